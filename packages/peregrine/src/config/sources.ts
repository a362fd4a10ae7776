import fs from "node:fs";
import { ErrorCodes, PeregrineError } from "../errors.js";
import type { ConfigEntry, ConfigSource, ConfigValue } from "./configuration.js";

/** The prefix of the environment variables configuration reads. */
export const ENVIRONMENT_PREFIX = "PEREGRINE_";

/**
 * Variables older than the configuration model, kept under their short names. Every other
 * `PEREGRINE_A__B` maps to the key `a:b`.
 */
const ENVIRONMENT_ALIASES: Readonly<Record<string, string>> = {
  SERVER: "server:kind",
  LOG_LEVEL: "logging:logLevel:default",
};

function invalidConfig(message: string, cause?: unknown): PeregrineError {
  return new PeregrineError(ErrorCodes.INVALID_CONFIG, message, cause === undefined ? undefined : { cause });
}

/** Flattens a JSON value to ":"-path entries; arrays become index keys (`urls:0`), as in ASP.NET Core. */
function flatten(value: unknown, path: string, source: ConfigSource, out: ConfigEntry[]): void {
  if (value !== null && typeof value === "object") {
    for (const [key, child] of Object.entries(value)) flatten(child, path === "" ? key : `${path}:${key}`, source, out);
    return;
  }
  out.push({ key: path, value: value as ConfigValue, source });
}

/**
 * Reads a JSON configuration file. A file that does not exist adds nothing; one that is
 * not a JSON object fails with PEREGRINE_INVALID_CONFIG naming the file.
 */
export function readJsonFile(path: string): ConfigEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw invalidConfig(`${path} cannot be read: ${(error as Error).message}`, error);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw invalidConfig(`${path} is not valid JSON: ${(error as Error).message}`, error);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw invalidConfig(`${path} must hold a JSON object ({ "server": { ... } }), not ${JSON.stringify(parsed)}`);
  }
  const entries: ConfigEntry[] = [];
  flatten(parsed, "", { kind: "file", name: path }, entries);
  return entries;
}

/**
 * Reads `PEREGRINE_*` variables: `__` separates sections, and names match keys
 * case-insensitively (`PEREGRINE_SERVER__LIMITS__MAXREQUESTBODYSIZE`). An empty variable
 * counts as unset.
 */
export function readEnvironment(env: NodeJS.ProcessEnv): ConfigEntry[] {
  const entries: ConfigEntry[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || value === "") continue;
    if (name.slice(0, ENVIRONMENT_PREFIX.length).toUpperCase() !== ENVIRONMENT_PREFIX) continue;
    const rest = name.slice(ENVIRONMENT_PREFIX.length);
    if (rest === "") continue;
    const key = ENVIRONMENT_ALIASES[rest.toUpperCase()] ?? rest.replaceAll("__", ":");
    entries.push({ key, value, source: { kind: "environment", name } });
  }
  return entries;
}

/**
 * Reads command-line arguments as ASP.NET Core does: `--key=value`, `--key value` and
 * `key=value`, with ":" between sections (`--server:limits:maxRequestBodySize=10`).
 */
export function readArguments(args: readonly string[]): ConfigEntry[] {
  const entries: ConfigEntry[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const dashed = arg.startsWith("--") ? arg.slice(2) : arg.startsWith("/") ? arg.slice(1) : undefined;
    const body = dashed ?? arg;
    const eq = body.indexOf("=");
    let key: string;
    let value: string;
    if (eq >= 0) {
      key = body.slice(0, eq);
      value = body.slice(eq + 1);
    } else if (dashed !== undefined) {
      const next = args[i + 1];
      if (next === undefined || next.startsWith("--")) {
        throw invalidConfig(`command-line argument ${arg} has no value: write ${arg}=value or ${arg} value`);
      }
      key = dashed;
      value = next;
      i++;
    } else {
      throw invalidConfig(
        `command-line argument ${JSON.stringify(arg)} is not a setting: write --key=value or --key value`,
      );
    }
    if (key === "") throw invalidConfig(`command-line argument ${JSON.stringify(arg)} has no key before "="`);
    entries.push({ key: key.replaceAll("__", ":"), value, source: { kind: "argument", name: `--${key}` } });
  }
  return entries;
}
