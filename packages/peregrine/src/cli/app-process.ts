import { type ChildProcess, spawn } from "node:child_process";
import os from "node:os";
import type { ResolvedEntry } from "./entry.js";

/** What `peregrine run` starts: the entry, in its folder, with the environment and arguments for the app. */
export interface AppLaunch extends ResolvedEntry {
  env: NodeJS.ProcessEnv;
  args: string[];
}

/** Milliseconds a stopping app gets beyond its own shutdownTimeout before it is killed on a restart. */
const RESTART_KILL_AFTER_MS = 35_000;

/**
 * Node's arguments for the app. Debug loads tsx, which runs TypeScript with source maps;
 * Release runs the built JavaScript as it is.
 */
export function nodeArguments(launch: AppLaunch): string[] {
  const runner =
    launch.configuration === "Debug" ? ["--enable-source-maps", "--import", import.meta.resolve("tsx")] : [];
  return [...runner, launch.file, ...launch.args];
}

/** The exit code a shell reports: the app's own, or 128 + the signal that ended it. */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal === null ? 0 : (os.constants.signals[signal] ?? 0));
}

/**
 * One run of the app as a child process. It gets its own process group, so a Ctrl+C in
 * the terminal reaches only `peregrine run`, which forwards it once (a second one kills).
 */
export class AppProcess {
  readonly #child: ChildProcess;
  /** Resolves with the shell exit code once the process has exited. */
  readonly exited: Promise<number>;

  constructor(launch: AppLaunch) {
    this.#child = spawn(process.execPath, nodeArguments(launch), {
      cwd: launch.appFolder,
      env: launch.env,
      // Its own group keeps terminal signals away; stdin stays with the CLI, since a
      // background group reading the terminal would be stopped.
      detached: true,
      stdio: ["ignore", "inherit", "inherit"],
    });
    this.exited = new Promise((resolve) => {
      this.#child.once("exit", (code, signal) => resolve(exitCodeOf(code, signal)));
      this.#child.once("error", () => resolve(127));
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill(signal);
  }

  /** SIGTERM, then SIGKILL if the app has not exited in time; resolves with the exit code. */
  async stop(): Promise<number> {
    this.signal("SIGTERM");
    const timer = setTimeout(() => this.signal("SIGKILL"), RESTART_KILL_AFTER_MS);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
