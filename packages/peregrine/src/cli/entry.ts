import fs from "node:fs";
import path from "node:path";
import { ErrorCodes, PeregrineError } from "../errors.js";

/** Debug runs the TypeScript sources; Release runs the built JavaScript. */
export type BuildConfiguration = "Debug" | "Release";

/** Where `peregrine run` looks for an entry when none is given, by configuration. */
export const DEFAULT_ENTRIES: Readonly<Record<BuildConfiguration, readonly string[]>> = {
  Debug: ["src/main.ts", "src/index.ts", "main.ts", "index.ts"],
  Release: ["dist/main.js", "dist/index.js", "main.js", "index.js"],
};

const TYPESCRIPT = /\.[mc]?ts$/;

export interface ResolvedEntry {
  /** The folder launchSettings.json and peregrine.json are read from; the app's working directory. */
  appFolder: string;
  /** Absolute. */
  file: string;
  configuration: BuildConfiguration;
}

function isFile(file: string): boolean {
  return fs.statSync(file, { throwIfNoEntry: false })?.isFile() === true;
}

/** package.json "main" of the app folder, when it names a file that exists. */
function packageMain(appFolder: string): string | undefined {
  try {
    const main = (JSON.parse(fs.readFileSync(path.join(appFolder, "package.json"), "utf8")) as { main?: unknown }).main;
    if (typeof main === "string" && isFile(path.join(appFolder, main))) return path.join(appFolder, main);
  } catch {
    // No package.json, or one without a usable main: the defaults apply.
  }
  return undefined;
}

/** The first candidate for `configuration`: package.json "main" for Release, then the defaults. */
function findEntry(appFolder: string, configuration: BuildConfiguration): string | undefined {
  const main = packageMain(appFolder);
  if (main !== undefined && TYPESCRIPT.test(main) === (configuration === "Debug")) return main;
  return DEFAULT_ENTRIES[configuration].map((c) => path.join(appFolder, c)).find(isFile);
}

/**
 * The app's folder: `entry` when it is a folder, else the current one. A missing entry
 * is an error.
 */
export function appFolderOf(cwd: string, entry: string | undefined): string {
  if (entry === undefined) return cwd;
  const given = path.resolve(cwd, entry);
  const stat = fs.statSync(given, { throwIfNoEntry: false });
  if (stat === undefined) {
    throw new PeregrineError(
      ErrorCodes.INVALID_OPTION,
      `the entry ${given} does not exist: give a file or the app's folder`,
    );
  }
  return stat.isDirectory() ? given : cwd;
}

/**
 * Resolves what `peregrine run [entry] [-c]` runs. `entry` is a file (run from the
 * current folder) or the app's folder. Without `-c`, a TypeScript entry runs as Debug and
 * a JavaScript one as Release; with neither entry nor `-c`, Debug when the folder has a
 * TypeScript entry.
 */
export function resolveEntry(
  cwd: string,
  entry: string | undefined,
  configuration: BuildConfiguration | undefined,
): ResolvedEntry {
  const given = entry === undefined ? undefined : path.resolve(cwd, entry);
  const appFolder = appFolderOf(cwd, entry);
  if (given !== undefined && isFile(given)) {
    const chosen = configuration ?? (TYPESCRIPT.test(given) ? "Debug" : "Release");
    if (chosen === "Release" && TYPESCRIPT.test(given)) {
      throw new PeregrineError(
        ErrorCodes.INVALID_OPTION,
        `${given} is TypeScript, and -c Release runs built JavaScript: build it and give the .js file, or use -c Debug`,
      );
    }
    return { appFolder, file: given, configuration: chosen };
  }
  for (const chosen of configuration === undefined ? (["Debug", "Release"] as const) : [configuration]) {
    const file = findEntry(appFolder, chosen);
    if (file !== undefined) return { appFolder, file, configuration: chosen };
  }
  const looked = (configuration === undefined ? ["Debug", "Release"] : [configuration]).flatMap((c) =>
    DEFAULT_ENTRIES[c as BuildConfiguration].map((d) => path.join(appFolder, d)),
  );
  throw new PeregrineError(
    ErrorCodes.INVALID_OPTION,
    `no entry to run in ${appFolder}: give one (peregrine run app.ts), set "main" in package.json, or add one of ${looked.join(", ")}`,
  );
}
