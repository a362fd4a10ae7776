import path from "node:path";
import { ErrorCodes, PeregrineError } from "../errors.js";
import { DEFAULT_ENVIRONMENT } from "../hosting/environment.js";
import { Configuration, describeSource } from "./configuration.js";
import { readArguments, readEnvironment, readJsonFile } from "./sources.js";

export interface LoadOptions {
  /** The folder peregrine.json is read from; absolute. */
  contentRoot: string;
  args: readonly string[];
  env: NodeJS.ProcessEnv;
  /** The environment given in code; wins over PEREGRINE_ENVIRONMENT and --environment. */
  environment?: string;
}

/**
 * Reads the four configuration sources, later ones winning key by key: peregrine.json,
 * peregrine.{Environment}.json, PEREGRINE_* variables, command-line arguments. The
 * environment comes first, from code, the arguments or PEREGRINE_ENVIRONMENT, because
 * it picks the second file.
 */
export function loadConfiguration(options: LoadOptions): { configuration: Configuration; environment: string } {
  const variables = readEnvironment(options.env);
  const args = readArguments(options.args);
  const named = options.environment ?? Configuration.fromSources([variables, args]).entry("environment");
  const environment = typeof named === "string" ? named : (named?.value ?? DEFAULT_ENVIRONMENT);
  if (typeof environment !== "string" || environment.trim() === "" || /[/\\]/.test(environment)) {
    const where = typeof named === "object" && named !== null ? `${describeSource(named.source)}: ` : "";
    throw new PeregrineError(
      ErrorCodes.INVALID_CONFIG,
      `${where}environment = ${JSON.stringify(environment)} is invalid: expected a name such as "Development", without "/" or "\\"`,
    );
  }
  const files = [
    readJsonFile(path.join(options.contentRoot, "peregrine.json")),
    readJsonFile(path.join(options.contentRoot, `peregrine.${environment}.json`)),
  ];
  return { configuration: Configuration.fromSources([...files, variables, args]), environment };
}
