// `peregrine run`: launch profiles, flags over profiles, the start-up lines, graceful
// shutdown on SIGTERM, and Debug restarts on a file change. Each test runs the real CLI
// on a copy of test/fixtures/cli-app.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { afterAll, afterEach, describe, expect, it } from "vitest";

const repo = fileURLToPath(new URL("..", import.meta.url));
const cli = path.join(repo, "packages/peregrine/dist/cli/main.js");
const fixture = path.join(repo, "test/fixtures/cli-app");
const folders: string[] = [];
const running: ChildProcess[] = [];

afterEach(() => {
  for (const child of running.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
});
afterAll(() => {
  for (const dir of folders) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * A copy of the fixture app that a test may change, built: src/*.ts compiled to dist/*.js
 * for Release. It resolves `peregrine` through the repo's node_modules.
 */
function appCopy(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "peregrine-cli-"));
  folders.push(dir);
  fs.cpSync(fixture, dir, { recursive: true });
  fs.symlinkSync(path.join(repo, "node_modules"), path.join(dir, "node_modules"), "dir");
  fs.mkdirSync(path.join(dir, "dist"));
  for (const file of fs.readdirSync(path.join(dir, "src"))) {
    const source = fs.readFileSync(path.join(dir, "src", file), "utf8");
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    });
    fs.writeFileSync(path.join(dir, "dist", file.replace(/\.ts$/, ".js")), outputText);
  }
  return dir;
}

interface Cli {
  child: ChildProcess;
  /** Every stdout and stderr line so far. */
  lines: string[];
  /** The first line matching `pattern`, waiting for it up to `timeoutMs`. */
  line(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  exited: Promise<number | null>;
}

function runCli(args: string[], cwd: string, env: Record<string, string> = {}): Cli {
  const child = spawn(process.execPath, [cli, ...args], {
    cwd,
    // PEREGRINE_LOG_LEVEL=warn from vitest.config would hide the start-up lines.
    env: { ...process.env, PEREGRINE_LOG_LEVEL: "info", PEREGRINE_URLS: "", PEREGRINE_ENVIRONMENT: "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.push(child);
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream as NodeJS.ReadableStream }).on("line", (line) => {
      lines.push(line);
      for (const wake of waiters) wake();
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const line = (pattern: RegExp, timeoutMs = 20_000) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        for (const l of lines) {
          const match = pattern.exec(l);
          if (match) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(match);
            return;
          }
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no line matched ${pattern} in ${timeoutMs} ms; output:\n${lines.join("\n")}`));
      }, timeoutMs);
      waiters.add(check);
      check();
      void exited.then(() => setTimeout(check, 50));
    });
  return { child, lines, line, exited };
}

/** A loopback port that was free a moment ago. */
async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function listening(run: Cli): Promise<string> {
  return (await run.line(/Now listening on: (http:\/\/127\.0\.0\.1:\d+)/))[1] as string;
}

async function getJson(url: string): Promise<Record<string, unknown>> {
  return (await (await fetch(url)).json()) as Record<string, unknown>;
}

describe("peregrine run", () => {
  it("uses the first Project profile and prints Kestrel's start-up lines", async () => {
    const dir = appCopy();
    const run = runCli(["run", "-c", "Release"], dir);
    const url = await listening(run);
    await run.line(/Hosting environment: Development/);
    await run.line(new RegExp(`Content root path: ${dir.replaceAll("/", "\\/")}$`));
    expect(run.lines.some((l) => l.includes('launch profile "web" (Project)'))).toBe(true);
    expect(await getJson(url)).toEqual({ message: "first", environment: "Development", greeting: "from web" });
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);
  });

  it("takes a profile by name, or none, and lets --urls and --environment win over the profile", async () => {
    const dir = appCopy();
    const staging = runCli(["run", "-c", "Release", "--launch-profile", "staging"], dir);
    expect(await getJson(await listening(staging))).toMatchObject({
      environment: "Staging",
      greeting: "from peregrine.json",
    });
    staging.child.kill("SIGTERM");

    const none = runCli(["run", "dist/main.js", "--no-launch-profile", "--urls", "http://127.0.0.1:0"], dir);
    expect(await getJson(await listening(none))).toMatchObject({
      environment: "Production",
      greeting: "from peregrine.json",
    });
    expect(none.lines.some((l) => l.includes("launch profile"))).toBe(false);
    none.child.kill("SIGTERM");

    // Flags win over the profile's applicationUrl and variables; app arguments follow "--".
    const probe = await freePort();
    const flags = runCli(
      [
        "run",
        "-c",
        "Release",
        "--urls",
        `http://127.0.0.1:${probe}`,
        "--environment",
        "Flagged",
        "--",
        "--greeting=from args",
      ],
      dir,
    );
    expect(await listening(flags)).toBe(`http://127.0.0.1:${probe}`);
    expect(await getJson(`http://127.0.0.1:${probe}`)).toMatchObject({
      environment: "Flagged",
      greeting: "from args",
    });
    flags.child.kill("SIGTERM");
    expect(await Promise.all([staging.exited, none.exited, flags.exited])).toEqual([0, 0, 0]);
  });

  it("lets in-flight requests finish on SIGTERM, then exits with the app's code", async () => {
    const dir = appCopy();
    const run = runCli(["run", "-c", "Release"], dir);
    const url = await listening(run);
    const slow = fetch(`${url}/slow`).then((r) => r.text());
    await new Promise((r) => setTimeout(r, 100));
    run.child.kill("SIGTERM");
    expect(await slow).toBe("done");
    expect(await run.exited).toBe(0);
    expect(run.lines).toContain("info: Application is shutting down...");
  });

  it("runs the TypeScript entry in Debug and restarts it when a file changes", async () => {
    const dir = appCopy();
    const run = runCli(["run"], dir);
    const first = await listening(run);
    expect(run.lines.some((l) => l.includes("running src/main.ts (Debug)"))).toBe(true);
    expect(await getJson(first)).toMatchObject({ message: "first" });
    fs.writeFileSync(path.join(dir, "src/message.ts"), 'export const message: string = "second";\n');
    await run.line(/src\/message\.ts changed; restarting the app/);
    // The restarted app binds a new port 0 address: wait for its second listening line.
    const deadline = Date.now() + 20_000;
    let second: string | undefined;
    while (second === undefined && Date.now() < deadline) {
      const all = run.lines.flatMap((l) => /Now listening on: (\S+)/.exec(l)?.[1] ?? []);
      if (all.length > 1) second = all[1];
      else await new Promise((r) => setTimeout(r, 50));
    }
    expect(second).toBeDefined();
    expect(await getJson(second as string)).toMatchObject({ message: "second" });
    // A change under node_modules or dist does not restart.
    fs.mkdirSync(path.join(dir, "dist"), { recursive: true });
    fs.writeFileSync(path.join(dir, "dist/ignored.js"), "");
    await new Promise((r) => setTimeout(r, 600));
    expect(run.lines.filter((l) => l.includes("changed; restarting")).length).toBe(1);
    // A restart is not an exit: nothing waits for another change.
    expect(run.lines.some((l) => l.includes("waiting for a file to change"))).toBe(false);
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);
  });

  it("runs an OutOfProcess profile behind peregrine host, with the profile's variables for the app", async () => {
    const dir = appCopy();
    const run = runCli(["run", "--launch-profile", "behind-host"], dir);
    // The host's own address comes first; the app's loopback port follows once it starts.
    const url = await listening(run);
    expect(run.lines.some((l) => l.includes('launch profile "behind-host" (OutOfProcess)'))).toBe(true);
    expect(await getJson(url)).toEqual({ message: "first", environment: "Development", greeting: "from behind-host" });
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);
  });

  it("dispatches host to peregrine host, and lists the commands", async () => {
    const dir = appCopy();
    const host = runCli(["host", "--help"], dir);
    expect(await host.exited).toBe(0);
    expect(host.lines[0]).toBe("Usage: peregrine host --app <entry.js> --urls <urls> [options]");
    const unknown = runCli(["serve"], dir);
    expect(await unknown.exited).toBe(1);
    expect(unknown.lines).toContain('peregrine: unknown command "serve"');
    expect(unknown.lines).toContain(
      "  run     run an app, with a launch profile from launchSettings.json (docs/cli.md)",
    );
  });

  it("fails with the profiles it has when the one asked for is not there", async () => {
    const dir = appCopy();
    const run = runCli(["run", "--launch-profile", "nope"], dir);
    expect(await run.exited).toBe(1);
    expect(run.lines.join("\n")).toContain(
      `PEREGRINE_INVALID_OPTION: --launch-profile "nope": no such profile in ${path.join(dir, "launchSettings.json")} (it has "behind-host", "web", "staging")`,
    );
    const bad = runCli(["run", "-c", "Fast"], dir);
    expect(await bad.exited).toBe(1);
    expect(bad.lines.join("\n")).toContain('--configuration = "Fast" is invalid: use "Debug" or "Release"');
  });
});
