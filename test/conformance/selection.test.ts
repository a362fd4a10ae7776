// Which server WebApplication.create() picks: the `server` option, PEREGRINE_SERVER,
// and the fallback to the node server when the native addon cannot load (simulated
// with PEREGRINE_TEST_NATIVE_LOAD_ERROR, in child processes so the once-per-process
// warning starts fresh).
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { NativeServer, NodeServer, silentLogger, TestServer, WebApplication } from "peregrine";
import { afterEach, describe, expect, it } from "vitest";

const run = promisify(execFile);

/** Runs an ES module script with `peregrine` importable; returns its last stdout line as JSON. */
async function script(source: string, env: Record<string, string>): Promise<unknown> {
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", source], {
    cwd: process.cwd(),
    env: { ...process.env, PEREGRINE_SERVER: "", PEREGRINE_LOG_LEVEL: "warn", ...env },
    timeout: 20_000,
  });
  return JSON.parse(stdout.trim().split("\n").at(-1) as string);
}

const SERVE_ONE = `
import { WebApplication } from "peregrine";
const warnings = [];
const logger = { error() {}, info() {}, debug() {}, warn(fields, message) { warnings.push({ ...fields, message }); } };
const apps = [WebApplication.create({ urls: ["http://127.0.0.1:0"], logger }), WebApplication.create({ urls: ["http://127.0.0.1:0"], logger })];
apps[0].mapGet("/", () => "served");
await apps[0].start();
const body = await (await fetch(apps[0].urls[0])).text();
await apps[0].stop();
console.log(JSON.stringify({ servers: apps.map((a) => a.server.constructor.name), body, warnings }));
`;

describe("server selection", () => {
  const saved = process.env.PEREGRINE_SERVER;
  afterEach(() => {
    if (saved === undefined) delete process.env.PEREGRINE_SERVER;
    else process.env.PEREGRINE_SERVER = saved;
  });

  it("takes the server option, then PEREGRINE_SERVER, then native", () => {
    delete process.env.PEREGRINE_SERVER;
    expect(WebApplication.create({ logger: silentLogger }).server).toBeInstanceOf(NativeServer);
    expect(WebApplication.create({ server: "node", logger: silentLogger }).server).toBeInstanceOf(NodeServer);
    process.env.PEREGRINE_SERVER = "node";
    expect(WebApplication.create({ logger: silentLogger }).server).toBeInstanceOf(NodeServer);
    expect(WebApplication.create({ server: "native", logger: silentLogger }).server).toBeInstanceOf(NativeServer);
    const test = new TestServer();
    expect(WebApplication.create({ server: test, logger: silentLogger }).server).toBe(test);
  });

  it("refuses unknown names with PEREGRINE_INVALID_OPTION", () => {
    process.env.PEREGRINE_SERVER = "kestrel";
    expect(() => WebApplication.create({ logger: silentLogger })).toThrow(
      expect.objectContaining({
        code: "PEREGRINE_INVALID_OPTION",
        message: expect.stringContaining("PEREGRINE_SERVER"),
      }),
    );
    delete process.env.PEREGRINE_SERVER;
    expect(() => WebApplication.create({ server: "http.sys" as never, logger: silentLogger })).toThrow(
      expect.objectContaining({ code: "PEREGRINE_INVALID_OPTION" }),
    );
  });

  it("falls back to the node server with one warning that names the load error", async () => {
    const result = (await script(SERVE_ONE, { PEREGRINE_TEST_NATIVE_LOAD_ERROR: "simulated: no prebuilt binary" })) as {
      servers: string[];
      body: string;
      warnings: { code: string; message: string }[];
    };
    expect(result.servers).toEqual(["NodeServer", "NodeServer"]);
    expect(result.body).toBe("served");
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]?.code).toBe("PEREGRINE_NATIVE_UNAVAILABLE");
    expect(result.warnings[0]?.message).toContain("simulated: no prebuilt binary");
    expect(result.warnings[0]?.message).toMatch(/node server/);
  });

  it("makes native asked for by name an error when the addon cannot load", async () => {
    for (const [option, env] of [
      [`{ server: "native" }`, {}],
      ["{}", { PEREGRINE_SERVER: "native" }],
    ] as const) {
      const result = await script(
        `import { WebApplication } from "peregrine";
         try { WebApplication.create(${option}); console.log(JSON.stringify({ created: true })); }
         catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`,
        { PEREGRINE_TEST_NATIVE_LOAD_ERROR: "simulated", ...env },
      );
      expect(result).toEqual({ code: "PEREGRINE_NATIVE_UNAVAILABLE", message: expect.stringContaining("simulated") });
    }
  });

  it("serves with the native server and no warning when the addon loads", async () => {
    const result = (await script(SERVE_ONE, {})) as { servers: string[]; warnings: unknown[] };
    expect(result.servers).toEqual(["NativeServer", "NativeServer"]);
    expect(result.warnings).toEqual([]);
  });
});
