import fs from "node:fs";
import path from "node:path";
import { describeValue, ErrorCodes, PeregrineError } from "../errors.js";

/** The file `peregrine run` reads profiles from, in the app's folder (ASP.NET Core's shape). */
export const LAUNCH_SETTINGS_FILE = "launchSettings.json";

/** "Project" runs the app in-process; "OutOfProcess" runs it behind `peregrine host`. */
export type CommandName = "Project" | "OutOfProcess";

export interface LaunchProfile {
  name: string;
  commandName: CommandName;
  /** ";"-separated URLs, as PEREGRINE_URLS takes them. */
  applicationUrl: string | undefined;
  environmentVariables: Record<string, string>;
}

const COMMAND_NAMES: readonly string[] = ["Project", "OutOfProcess"];

function invalid(file: string, message: string): PeregrineError {
  return new PeregrineError(ErrorCodes.INVALID_CONFIG, `${file}: ${message}`);
}

/** Checks one profile's fields; fields ASP.NET Core tools add (launchBrowser, ...) are ignored. */
function readProfile(file: string, name: string, raw: unknown): LaunchProfile {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw invalid(file, `profiles.${name} must be an object with a commandName`);
  }
  const { commandName, applicationUrl, environmentVariables } = raw as Record<string, unknown>;
  if (typeof commandName !== "string" || !COMMAND_NAMES.includes(commandName)) {
    throw invalid(
      file,
      `profiles.${name}.commandName = ${describeValue(commandName)} is invalid: use "Project" (in-process) or "OutOfProcess" (behind peregrine host)`,
    );
  }
  if (applicationUrl !== undefined && typeof applicationUrl !== "string") {
    throw invalid(
      file,
      `profiles.${name}.applicationUrl = ${describeValue(applicationUrl)} is invalid: expected URLs separated by ";"`,
    );
  }
  const variables: Record<string, string> = {};
  if (environmentVariables !== undefined) {
    if (
      environmentVariables === null ||
      typeof environmentVariables !== "object" ||
      Array.isArray(environmentVariables)
    ) {
      throw invalid(file, `profiles.${name}.environmentVariables must be an object of names to strings`);
    }
    for (const [variable, value] of Object.entries(environmentVariables)) {
      if (typeof value !== "string") {
        throw invalid(
          file,
          `profiles.${name}.environmentVariables.${variable} = ${describeValue(value)} is invalid: expected a string`,
        );
      }
      variables[variable] = value;
    }
  }
  return {
    name,
    commandName: commandName as CommandName,
    applicationUrl: applicationUrl?.trim() === "" ? undefined : applicationUrl,
    environmentVariables: variables,
  };
}

/** The profiles of `<appFolder>/launchSettings.json` in file order; none when there is no file. */
export function readLaunchProfiles(appFolder: string): { file: string; profiles: LaunchProfile[] } {
  const file = path.join(appFolder, LAUNCH_SETTINGS_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { file, profiles: [] };
    throw invalid(file, `cannot be read: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw invalid(file, `is not valid JSON: ${(error as Error).message}`);
  }
  const profiles = (parsed as { profiles?: unknown } | null)?.profiles;
  if (profiles === undefined) return { file, profiles: [] };
  if (profiles === null || typeof profiles !== "object" || Array.isArray(profiles)) {
    throw invalid(file, `"profiles" must be an object of profile names to profiles`);
  }
  return { file, profiles: Object.entries(profiles).map(([name, raw]) => readProfile(file, name, raw)) };
}

/**
 * The profile `peregrine run` uses: the one named, else the first "Project" profile, else
 * none. A name that is not in the file is an error that lists the names that are.
 */
export function selectLaunchProfile(appFolder: string, name: string | undefined): LaunchProfile | undefined {
  const { file, profiles } = readLaunchProfiles(appFolder);
  if (name === undefined) return profiles.find((p) => p.commandName === "Project");
  const found = profiles.find((p) => p.name === name);
  if (found === undefined) {
    const known = profiles.map((p) => JSON.stringify(p.name)).join(", ");
    throw new PeregrineError(
      ErrorCodes.INVALID_OPTION,
      `--launch-profile ${JSON.stringify(name)}: no such profile in ${file}${known === "" ? " (it has none)" : ` (it has ${known})`}`,
    );
  }
  return found;
}
