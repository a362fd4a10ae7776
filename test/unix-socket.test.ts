// unix:/path endpoints on the native and node servers: serving over the socket, what
// the connection reports, app.urls, stale and live socket files, and the file's removal.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ServerName, silentLogger, WebApplication } from "peregrine";
import { afterAll, describe, expect, it } from "vitest";

const dir = mkdtempSync(join(tmpdir(), "peregrine-unix-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** GET over the unix socket; resolves with the status and body. */
function get(socketPath: string, path = "/"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path, headers: { host: "app.local" } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error("timed out")));
  });
}

function app(server: ServerName, url: string): WebApplication {
  const a = WebApplication.create({ server, urls: [url], logger: silentLogger });
  a.mapGet("/", (ctx) => ({
    remoteAddress: ctx.connection.remoteAddress,
    remotePort: ctx.connection.remotePort,
    localAddress: ctx.connection.localAddress,
    host: ctx.request.host,
  }));
  return a;
}

describe.each(["native", "node"] as const)("unix socket endpoints on the %s server", (server) => {
  it("serves over the socket, reports unix:/path, and removes the file on stop", async () => {
    const path = join(dir, `${server}-serve.sock`);
    const a = app(server, `unix:${path}`);
    await a.start();
    expect(a.urls).toEqual([`unix:${path}`]);
    const res = await get(path);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ remoteAddress: "", remotePort: 0, localAddress: "", host: "app.local" });
    await a.stop();
    expect(existsSync(path)).toBe(false);
  });

  it("serves a unix endpoint from the endpoints option beside a TCP URL", async () => {
    const path = join(dir, `${server}-endpoints.sock`);
    const a = WebApplication.create({
      server,
      urls: ["http://127.0.0.1:0"],
      endpoints: [{ url: `unix:${path}`, protocols: "http1" }],
      logger: silentLogger,
    });
    a.mapGet("/", () => "ok");
    await a.start();
    expect(a.urls[1]).toBe(`unix:${path}`);
    expect((await get(path)).body).toBe("ok");
    expect(await (await fetch(a.urls[0] as string)).text()).toBe("ok");
    await a.stop();
  });

  it("replaces a stale socket file, refuses a live one, and never removes other files", async () => {
    const path = join(dir, `${server}-stale.sock`);
    // A socket file nobody accepts on, as a process that was killed leaves behind.
    spawnSync(process.execPath, [
      "-e",
      "require('node:net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))",
      path,
    ]);
    expect(existsSync(path)).toBe(true);
    const first = app(server, `unix:${path}`);
    await first.start();
    expect((await get(path)).status).toBe(200);

    const second = app(server, `unix:${path}`);
    await expect(second.start()).rejects.toMatchObject({ code: "PEREGRINE_ADDRESS_IN_USE" });
    expect((await get(path)).status).toBe(200);
    await first.stop();

    const file = join(dir, `${server}-regular`);
    writeFileSync(file, "keep me");
    const third = app(server, `unix:${file}`);
    await expect(third.start()).rejects.toMatchObject({
      code: "PEREGRINE_ADDRESS_IN_USE",
      message: expect.stringContaining("not a socket"),
    });
    expect(existsSync(file)).toBe(true);
  });

  it.each([
    ["unix:relative.sock", "must be absolute"],
    ["unix:/tmp/dir/", "must name a file"],
    [`unix:/${"a".repeat(120)}`, "at most 107 bytes"],
  ])("rejects %s with PEREGRINE_INVALID_URL", async (url, message) => {
    const a = app(server, url);
    const error = await a.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: "PEREGRINE_INVALID_URL", message: expect.stringContaining(message) });
  });
});
