// The `workers` option: one native listener, the pipeline in worker threads that each
// load the app's module (test/fixtures/workers-app/main.mjs), requests going to the
// least busy worker, crashed workers restarted, and a graceful stop of the whole.
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";

const entry = new URL("./fixtures/workers-app/main.mjs", import.meta.url).pathname;
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill("SIGKILL");
});

interface App {
  child: ChildProcess;
  url: string;
  log: string[];
  exited: Promise<number | null>;
}

/** Starts the fixture and resolves once it logged the address it listens on. */
function startFixture(): Promise<App> {
  const child = spawn(process.execPath, [entry], {
    env: { ...process.env, PEREGRINE_LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  const log: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream as NodeJS.ReadableStream }).on("line", (line) => log.push(line));
  }
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on("line", (line) => {
      const url = /Now listening on: (\S+)/.exec(line)?.[1];
      if (url !== undefined) resolve({ child, url, log, exited });
    });
    void exited.then((code) => reject(new Error(`the app exited early (${code}): ${log.join("\n")}`)));
  });
}

async function get(url: string): Promise<string> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  return response.text();
}

describe("workers", () => {
  it("serves from worker threads only, spreading concurrent requests over all of them", async () => {
    const app = await startFixture();
    const bodies = await Promise.all(Array.from({ length: 16 }, () => get(`${app.url}/slow`)));
    const threads = new Set(bodies.map((b) => b.replace("thread ", "")));
    // The main thread is thread 0; two workers answer, and they share the load.
    expect(threads.has("0")).toBe(false);
    expect(threads.size).toBe(2);
    expect(await (await fetch(`${app.url}/echo`, { method: "POST", body: "through a worker" })).text()).toBe(
      "through a worker",
    );
  }, 20_000);

  it("restarts a worker that exits while the other goes on serving", async () => {
    const app = await startFixture();
    const gone = (await get(`${app.url}/exit`)).replace(/thread (\d+) exiting/, "$1");
    const deadline = Date.now() + 10_000;
    while (!app.log.some((l) => l.includes("WORKER_EXITED")) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(app.log.join("\n")).toContain("reason=WORKER_EXITED");
    // Meanwhile the other worker serves everything. (Not before the exit is seen: a
    // request handed to the worker in the 20 ms before it exits dies with it, as
    // in-flight requests of a crashed worker do.)
    for (let i = 0; i < 5; i++) expect(await get(`${app.url}/`)).toMatch(/^thread \d+$/);
    // Once restarted (a new thread id), both workers share concurrent requests again.
    let threads = new Set<string>();
    while (Date.now() < deadline) {
      const bodies = await Promise.all(Array.from({ length: 8 }, () => get(`${app.url}/slow`)));
      threads = new Set(bodies);
      if (threads.size === 2 && !threads.has(`thread ${gone}`)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(threads.size).toBe(2);
    expect(threads.has(`thread ${gone}`)).toBe(false);
  }, 30_000);

  it("stops on SIGTERM: in-flight requests finish, the workers and the process exit", async () => {
    const app = await startFixture();
    const inFlight = Promise.all(Array.from({ length: 4 }, () => get(`${app.url}/slow`)));
    await new Promise((r) => setTimeout(r, 30));
    app.child.kill("SIGTERM");
    const bodies = await inFlight;
    expect(bodies.every((b) => /^thread [1-9]\d*$/.test(b))).toBe(true);
    expect(await app.exited).toBe(0);
    expect(app.log.join("\n")).not.toMatch(/fail:/);
  }, 20_000);
});
