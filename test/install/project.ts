// A fresh project outside the workspace that installs the packed tarballs as a user
// would, on a PATH where any Rust toolchain call is caught instead of run.
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { promisify } from "node:util";
import { ROOT } from "./pack.js";

const run = promisify(execFile);

/** Tools whose use during install would mean the package builds from source. */
const TOOLCHAIN = ["cargo", "rustc", "rustup", "napi"];

export class InstallProject {
  readonly dir: string;
  readonly #shims: string;
  readonly #toolchainLog: string;

  constructor(base: string) {
    this.dir = path.join(base, "app");
    this.#shims = path.join(base, "shims");
    this.#toolchainLog = path.join(base, "toolchain-calls.log");
    fs.mkdirSync(this.dir, { recursive: true });
    fs.writeFileSync(
      path.join(this.dir, "package.json"),
      `${JSON.stringify({ name: "peregrine-install-check", private: true }, null, 2)}\n`,
    );
    fs.mkdirSync(this.#shims);
    for (const tool of TOOLCHAIN) {
      const shim = path.join(this.#shims, tool);
      fs.writeFileSync(shim, `#!/bin/sh\necho "${tool} $*" >> "${this.#toolchainLog}"\nexit 1\n`);
      fs.chmodSync(shim, 0o755);
    }
  }

  /**
   * The install environment: no npm_* variables from a surrounding `npm test`, and a PATH
   * without the workspace's node_modules/.bin or any directory holding cargo or rustc,
   * led by shims that log a call and fail.
   */
  #env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (!key.toLowerCase().startsWith("npm_")) env[key] = value;
    }
    const kept = (process.env.PATH ?? "").split(path.delimiter).filter((dir) => {
      if (dir === "" || path.resolve(dir).startsWith(ROOT)) return false;
      return !["cargo", "rustc"].some((tool) => fs.existsSync(path.join(dir, tool)));
    });
    env.PATH = [this.#shims, ...kept].join(path.delimiter);
    return env;
  }

  /** `npm install` of every spec in one command, so the tarballs satisfy each other. */
  async install(specs: string[]): Promise<void> {
    await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", ...specs], {
      cwd: this.dir,
      env: this.#env(),
      maxBuffer: 16 * 1024 * 1024,
    });
  }

  /** The toolchain commands the install ran, one per line; empty when none. */
  toolchainCalls(): string[] {
    if (!fs.existsSync(this.#toolchainLog)) return [];
    return fs.readFileSync(this.#toolchainLog, "utf8").split("\n").filter(Boolean);
  }

  /** The lockfile's entry for an installed package. */
  lockEntry(name: string): { version?: string; resolved?: string } | undefined {
    const lock = JSON.parse(fs.readFileSync(path.join(this.dir, "package-lock.json"), "utf8"));
    return lock.packages?.[`node_modules/${name}`];
  }

  /** Bytes on disk under node_modules/<name>. */
  installedSize(name: string): number {
    let total = 0;
    const walk = (dir: string): void => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(full);
        else total += fs.statSync(full).size;
      }
    };
    walk(path.join(this.dir, "node_modules", name));
    return total;
  }

  /** Copies a fixture file into the project. */
  addFile(from: string, name: string): void {
    fs.copyFileSync(from, path.join(this.dir, name));
  }

  /** Runs the project's own tsc (installed from the registry) on a tsconfig. */
  async typeCheck(tsconfig: string): Promise<void> {
    const tsc = path.join(this.dir, "node_modules/typescript/bin/tsc");
    try {
      await run(process.execPath, [tsc, "-p", tsconfig], { cwd: this.dir });
    } catch (error) {
      const { stdout, stderr } = error as { stdout?: string; stderr?: string };
      throw new Error(`tsc -p ${tsconfig} failed:\n${stdout ?? ""}${stderr ?? ""}`);
    }
  }

  /**
   * Starts a built app, waits for the URL it prints on its first stdout line, and returns
   * it with a stop() that sends SIGTERM and resolves with the exit code.
   */
  async start(script: string): Promise<{ url: string; stop(): Promise<number | null> }> {
    const child = spawn(process.execPath, [script], { cwd: this.dir, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const firstLine = new Promise<string>((resolve, reject) => {
      readline.createInterface({ input: child.stdout }).once("line", resolve);
      void exited.then((code) => reject(new Error(`${script} exited with ${code} before listening:\n${stderr}`)));
    });
    const url = await firstLine;
    return {
      url,
      stop: () => {
        child.kill("SIGTERM");
        return exited;
      },
    };
  }
}

/** A fresh directory under the OS temp folder, outside the workspace. */
export function makeTempBase(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "peregrine-install-"));
}
