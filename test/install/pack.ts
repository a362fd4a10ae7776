// Packs the three packages a Linux x64 glibc user installs, the way the release
// workflow publishes them: `peregrine`, `@peregrine/native` with the optionalDependencies
// `napi prepublish` writes, and `@peregrine/native-linux-x64-gnu` holding the binary.
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export const ROOT = path.resolve(import.meta.dirname, "../..");
const NATIVE_DIR = path.join(ROOT, "packages/native");
const PLATFORM = "linux-x64-gnu";

export interface PackedFile {
  path: string;
  size: number;
}

export interface Tarball {
  name: string;
  file: string;
  /** Bytes of the .tgz. */
  size: number;
  /** Bytes of the files inside. */
  unpackedSize: number;
  files: PackedFile[];
}

/** `npm pack --json` in `dir`, into `destination`. */
async function npmPack(dir: string, destination: string, ignoreScripts: boolean): Promise<Tarball> {
  const args = ["pack", "--json", "--pack-destination", destination];
  if (ignoreScripts) args.push("--ignore-scripts");
  const { stdout } = await run("npm", args, { cwd: dir, maxBuffer: 16 * 1024 * 1024 });
  // Lifecycle scripts print before the JSON array.
  const [result] = JSON.parse(stdout.slice(stdout.indexOf("\n[") + 1)) as {
    name: string;
    filename: string;
    size: number;
    unpackedSize: number;
    files: PackedFile[];
  }[];
  if (result === undefined) throw new Error(`npm pack in ${dir} reported nothing`);
  return {
    name: result.name,
    file: path.join(destination, result.filename),
    size: result.size,
    unpackedSize: result.unpackedSize,
    files: result.files,
  };
}

/** Copies `files` from `from` into a fresh `to`, plus the repository's LICENSE. */
function stage(from: string, to: string, files: string[]): void {
  fs.mkdirSync(to, { recursive: true });
  for (const file of files) fs.copyFileSync(path.join(from, file), path.join(to, file));
  fs.copyFileSync(path.join(ROOT, "LICENSE"), path.join(to, "LICENSE"));
}

/** The optionalDependencies `napi prepublish` writes: every platform package, same version. */
function platformDependencies(version: string): Record<string, string> {
  const dependencies: Record<string, string> = {};
  for (const dir of fs.readdirSync(path.join(NATIVE_DIR, "npm")).sort()) {
    const manifest = JSON.parse(fs.readFileSync(path.join(NATIVE_DIR, "npm", dir, "package.json"), "utf8"));
    dependencies[manifest.name] = version;
  }
  return dependencies;
}

/**
 * Packs the three packages into `destination`. `peregrine` is packed in place, so its
 * prepack script builds it; the native packages are staged first, as prepublish stages them.
 */
export async function packAll(destination: string): Promise<{
  peregrine: Tarball;
  native: Tarball;
  platform: Tarball;
}> {
  const binary = `peregrine.${PLATFORM}.node`;
  if (!fs.existsSync(path.join(NATIVE_DIR, binary))) {
    throw new Error(`packages/native/${binary} is missing: run npm run build:native first`);
  }
  const staging = path.join(destination, "staging");
  const nativeStage = path.join(staging, "native");
  const manifest = JSON.parse(fs.readFileSync(path.join(NATIVE_DIR, "package.json"), "utf8"));
  stage(NATIVE_DIR, nativeStage, ["package.json", "README.md", ...manifest.files]);
  const manifestPath = path.join(nativeStage, "package.json");
  manifest.optionalDependencies = platformDependencies(manifest.version);
  fs.writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);

  const platformStage = path.join(staging, PLATFORM);
  stage(path.join(NATIVE_DIR, "npm", PLATFORM), platformStage, ["package.json", "README.md"]);
  fs.copyFileSync(path.join(NATIVE_DIR, binary), path.join(platformStage, binary));

  // One after another: `peregrine`'s prepack runs tsc on both cores.
  const peregrine = await npmPack(path.join(ROOT, "packages/peregrine"), destination, false);
  const native = await npmPack(nativeStage, destination, true);
  const platform = await npmPack(platformStage, destination, true);
  return { peregrine, native, platform };
}
