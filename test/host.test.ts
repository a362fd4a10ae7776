// The out-of-process host (`peregrine host`): real host, real app processes
// (test/fixtures/host-app/app.mjs), real sockets on loopback. Lazy and eager starts, the
// token, forwarded headers, streaming both ways, crashes and the rapid-fail cap, the
// startup time limit, app_offline.html, logs, graceful shutdown, and h2 over TLS.
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import type http2 from "node:http2";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type HostOptions, type Logger, type RunningHost, startHost } from "peregrine";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseHostArgs } from "../packages/peregrine/dist/host/command.js";
import { RapidFailWindow } from "../packages/peregrine/dist/host/rapid-fails.js";
import { hasOpenssl, makeCertificates, removeCertificates, requireTool } from "./support/certs.js";
import { closeSession, connectH2, h2Request } from "./support/h2.js";

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "host-app");
const APP = path.join(fixtures, "app.mjs");
const MiB = 1024 * 1024;

/** A logger that keeps every line, as "level: message {fields}". */
function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (fields: object, message?: string) => {
    const { err: _err, ...rest } = fields as { err?: unknown };
    lines.push(`${level}: ${message ?? ""} ${JSON.stringify(rest)}`);
  };
  return { logger: { error: at("error"), warn: at("warn"), info: at("info"), debug: at("debug") }, lines };
}

async function waitUntil<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface Info {
  pid: number;
  port: number;
  environment: string | null;
  remoteAddress: string;
  scheme: string;
  host: string;
  protocol: string;
  tokenSeen: boolean;
}

const hosts: RunningHost[] = [];
async function host(options: Partial<HostOptions> = {}) {
  const { logger, lines } = captureLogger();
  const running = await startHost({ app: APP, urls: ["http://127.0.0.1:0"], logger, ...options });
  hosts.push(running);
  return { host: running, url: running.urls[0] as string, lines };
}
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.stop()));
});

/** A request through node:http, from a chosen local address. */
function request(
  url: string,
  options: http.RequestOptions & { body?: string } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

describe("a host with a lazily started app", () => {
  let running: RunningHost;
  let url: string;
  let lines: string[];
  beforeAll(async () => {
    const { logger, lines: captured } = captureLogger();
    running = await startHost({ app: APP, urls: ["http://127.0.0.1:0"], logger });
    url = running.urls[0] as string;
    lines = captured;
  });
  afterAll(() => running.stop());

  it("starts the app on the first request, not before", async () => {
    await new Promise((r) => setTimeout(r, 300));
    expect(running.appProcessId).toBeUndefined();
    expect(lines.filter((l) => l.includes("Started application process"))).toEqual([]);
    const res = await fetch(`${url}/info`);
    expect(res.status).toBe(200);
    const info = (await res.json()) as Info;
    expect(running.appProcessId).toBe(info.pid);
    expect(info.protocol).toBe("HTTP/1.1");
    expect(info.tokenSeen).toBe(false);
  });

  it("puts the app's stdout and stderr in the host's log, prefixed with its pid", async () => {
    const res = await fetch(`${url}/log`);
    expect(await res.text()).toBe("logged");
    const pid = running.appProcessId;
    await waitUntil("the app's lines", () => lines.some((l) => l.includes("oops on stderr")));
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^info: \\[${pid}\\] host-app: hello on stdout`)));
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^warn: \\[${pid}\\] host-app: oops on stderr`)));
  });

  it("sends X-Forwarded-For, -Proto and -Host, which the app applies; a client's own are dropped", async () => {
    const { port } = new URL(url);
    const res = await request(`${url}/info`, {
      localAddress: "127.0.0.2",
      headers: { host: "public.example.test:8443", "x-forwarded-for": "6.6.6.6", "x-forwarded-proto": "https" },
    });
    const info = JSON.parse(res.body) as Info;
    // The host reaches the app from 127.0.0.1; 127.0.0.2 arrives only through the header.
    expect(info.remoteAddress).toBe("127.0.0.2");
    expect(info.host).toBe("public.example.test:8443");
    expect(info.scheme).toBe("http");
    expect(port).not.toBe(String(info.port));
  });

  it("rejects requests to the app's port without the host's token with 400, and logs them", async () => {
    const info = (await (await fetch(`${url}/info`)).json()) as Info;
    const direct = `http://127.0.0.1:${info.port}/info`;
    expect((await fetch(direct)).status).toBe(400);
    expect((await fetch(direct, { headers: { "x-peregrine-token": "not-the-token" } })).status).toBe(400);
    await waitUntil("the rejection in the log", () =>
      lines.some((l) => l.includes(`[${info.pid}]`) && l.includes("Request rejected")),
    );
    expect(lines.join("\n")).toContain("reason=PEREGRINE_HOST_TOKEN_INVALID");
  });

  it("streams a 50 MiB upload: the app reads the start before the client sends the rest", async () => {
    const chunk = Buffer.alloc(MiB, 97);
    const response = new Promise<string>((resolve, reject) => {
      const req = http.request(`${url}/upload`, { method: "POST" }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve(text));
      });
      req.on("error", reject);
      void (async () => {
        req.write(chunk);
        // Nothing more is sent until the app has seen the first MiB.
        await waitUntil("the app to receive the first MiB", async () => {
          const { bytes } = (await (await fetch(`${url}/uploaded`)).json()) as { bytes: number };
          return bytes > 0 ? bytes : undefined;
        });
        for (let i = 1; i < 50; i++) {
          if (!req.write(chunk)) await new Promise((r) => req.once("drain", r));
        }
        req.end();
      })().catch(reject);
    });
    expect(JSON.parse(await response)).toEqual({ bytes: 50 * MiB });
  });

  it("streams a 50 MiB download: the first MiB arrives before the app writes the rest", async () => {
    const received = await new Promise<number>((resolve, reject) => {
      http
        .get(`${url}/download/50`, (res) => {
          let bytes = 0;
          let released = false;
          res.on("data", (c: Buffer) => {
            bytes += c.byteLength;
            if (!released && bytes >= MiB) {
              released = true;
              fetch(`${url}/release-download`).catch(reject);
            }
          });
          res.on("end", () => resolve(bytes));
          res.on("error", reject);
        })
        .on("error", reject);
    });
    expect(received).toBe(50 * MiB);
  });

  it("forwards an upgrade: the app's 101 and headers, then bytes both ways until the client ends", async () => {
    const { port } = new URL(url);
    const socket = net.connect(Number(port), "127.0.0.1");
    await new Promise((resolve) => socket.once("connect", resolve));
    let received = "";
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
    });
    socket.write("GET /upgrade HTTP/1.1\r\nHost: example.test\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n");
    await waitUntil("the 101", () => (received.includes("\r\n\r\n") ? true : undefined));
    const head = received.slice(0, received.indexOf("\r\n\r\n"));
    expect(head).toMatch(/^HTTP\/1\.1 101 /);
    expect(head).toMatch(/\r\nupgrade: echo/i);
    expect(head).toMatch(/\r\nx-app-pid: \d+/i);
    received = "";
    socket.write("hello through the host");
    await waitUntil("the echo", () => (received === "HELLO THROUGH THE HOST" ? true : undefined));
    socket.end();
    await new Promise((resolve) => socket.once("close", resolve));
    // A declined upgrade is an ordinary response.
    const declined = await request(`${url}/upgrade`, { headers: { connection: "upgrade", upgrade: "other" } });
    expect(declined.status).toBe(426);
    expect(declined.body).toBe("upgrade to echo");
  });

  it("restarts a crashed app; the request it crashed on gets 502", async () => {
    const before = ((await (await fetch(`${url}/info`)).json()) as Info).pid;
    const crashed = await fetch(`${url}/exit`);
    expect(crashed.status).toBe(502);
    expect(await crashed.text()).toContain("PEREGRINE_HOST_APP_UNREACHABLE");
    const after = await waitUntil("the restarted app", async () => {
      const res = await fetch(`${url}/info`);
      return res.status === 200 ? ((await res.json()) as Info).pid : undefined;
    });
    expect(after).not.toBe(before);
    expect(isAlive(before)).toBe(false);
    expect(lines.join("\n")).toContain(`Application process ${before} exited unexpectedly with code 3`);
  });
});

describe("failures", () => {
  it("caps restarts at rapidFailsPerMinute, then answers 502 with a page until the minute passes", async () => {
    const { url, lines } = await host({ rapidFailsPerMinute: 2, env: { HOST_APP_MODE: "exit-at-start" } });
    for (let i = 0; i < 3; i++) {
      const res = await fetch(url);
      expect(res.status).toBe(502);
      expect(await res.text()).toContain("PEREGRINE_HOST_APP_START_FAILED");
    }
    const blocked = await fetch(url);
    expect(blocked.status).toBe(502);
    expect(blocked.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(Number(blocked.headers.get("retry-after"))).toBeGreaterThan(0);
    const page = await blocked.text();
    expect(page).toContain("failed more than 2 times in the last minute");
    expect(page).toContain("PEREGRINE_HOST_RAPID_FAILS");
    expect(lines.filter((l) => l.includes("Started application process"))).toHaveLength(3);
  });

  it("counts failures over a sliding minute", () => {
    const window = new RapidFailWindow(2);
    window.record(0);
    window.record(10_000);
    expect(window.blockedUntil(10_000)).toBeUndefined();
    window.record(20_000);
    expect(window.blockedUntil(20_000)).toBe(60_000);
    expect(window.blockedUntil(59_999)).toBe(60_000);
    expect(window.blockedUntil(60_000)).toBeUndefined();
  });

  it("stops an app that does not listen within startupTimeLimit and answers 502", async () => {
    const { host: running, url } = await host({ startupTimeLimit: 1000, env: { HOST_APP_MODE: "never-listen" } });
    const started = Date.now();
    const pending = fetch(url);
    const pid = await waitUntil("the app process", () => running.appProcessId);
    const res = await pending;
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(res.status).toBe(502);
    expect(await res.text()).toContain("PEREGRINE_HOST_STARTUP_TIME_LIMIT");
    await waitUntil("the app to be killed", () => !isAlive(pid));
  });
});

describe("app_offline.html", () => {
  let folder: string;
  afterEach(() => fs.rmSync(folder, { recursive: true, force: true }));

  it("stops the app and serves the file with 503 while it exists", async () => {
    folder = fs.mkdtempSync(path.join(os.tmpdir(), "peregrine-host-"));
    const entry = path.join(folder, "main.mjs");
    fs.writeFileSync(entry, `import ${JSON.stringify(APP)};\n`);
    const { host: running, url } = await host({ app: entry });
    const first = ((await (await fetch(`${url}/info`)).json()) as Info).pid;

    const page = "<!DOCTYPE html><h1>Back soon</h1>";
    fs.writeFileSync(path.join(folder, "app_offline.html"), page);
    const offline = await waitUntil("the 503", async () => {
      const res = await fetch(`${url}/info`);
      return res.status === 503 ? res : undefined;
    });
    expect(offline.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await offline.text()).toBe(page);
    await waitUntil("the app to stop", () => !isAlive(first));
    expect(running.appProcessId).toBeUndefined();

    fs.rmSync(path.join(folder, "app_offline.html"));
    const back = await waitUntil("the app again", async () => {
      const res = await fetch(`${url}/info`);
      return res.status === 200 ? ((await res.json()) as Info).pid : undefined;
    });
    expect(back).not.toBe(first);
  });
});

describe("peregrine host as a process", () => {
  let child: ChildProcess | undefined;
  afterEach(() => child?.kill("SIGKILL"));

  it("starts the app at once with --eager, and on SIGTERM lets in-flight requests finish, then stops the app", async () => {
    child = spawn(
      process.execPath,
      [
        path.join(fixtures, "run-host.mjs"),
        "--app",
        APP,
        "--urls",
        "http://127.0.0.1:0",
        "--eager",
        "--environment",
        "Staging",
      ],
      { env: { ...process.env, PEREGRINE_LOG_LEVEL: "info" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout?.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr?.on("data", (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child?.once("exit", (code) => resolve(code)));

    const url = await waitUntil("the host's URL", () => /Now listening on: (http:\/\/\S+)/.exec(output)?.[1]);
    // Eager: the app starts without a request.
    const pid = Number(await waitUntil("the app", () => /\[(\d+)\] host-app: listening/.exec(output)?.[1]));
    const info = (await (await fetch(`${url}/info`)).json()) as Info;
    expect(info.pid).toBe(pid);
    expect(info.environment).toBe("Staging");

    const slow = fetch(`${url}/slow/800`);
    await new Promise((r) => setTimeout(r, 200));
    child.kill("SIGTERM");
    const res = await slow;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("slow done");
    expect(await exited).toBe(0);
    expect(output).toContain(`[${pid}] host-app: stopped gracefully`);
    expect(isAlive(pid)).toBe(false);
  });

  it("names the flag that is wrong", () => {
    expect(() => parseHostArgs(["--app", APP, "--urls", "http://127.0.0.1:0", "--startup-time-limit", "2s"])).toThrow(
      /--startup-time-limit = "2s" is invalid/,
    );
    expect(() => parseHostArgs(["--urls", "http://127.0.0.1:0"])).toThrow(/--app/);
    expect(() => parseHostArgs(["--app", APP, "--urls", "a", "--tls-cert", "x.pem"])).toThrow(/--tls-key/);
    expect(parseHostArgs(["--app", APP, "--urls", "http://a:1;http://b:2", "--rapid-fails-per-minute", "3"])).toEqual({
      app: APP,
      urls: ["http://a:1", "http://b:2"],
      eager: false,
      rapidFailsPerMinute: 3,
    });
  });
});

describe("HTTP/2 and TLS at the edge", () => {
  const haveOpenssl = requireTool("openssl", hasOpenssl());
  let certs: ReturnType<typeof makeCertificates> | undefined;
  let session: http2.ClientHttp2Session | undefined;
  afterEach(async () => {
    if (session !== undefined) await closeSession(session);
    removeCertificates(certs);
  });

  it.runIf(haveOpenssl)("serves h2 over TLS and forwards the scheme as https", async () => {
    certs = makeCertificates();
    const { url } = await host({ urls: ["https://127.0.0.1:0"], tls: certs.server });
    session = await connectH2(url, { ca: certs.ca.cert });
    const res = await h2Request(session, { path: "/info" });
    expect(res.status).toBe(200);
    const info = JSON.parse(res.body.toString()) as Info;
    expect(info.scheme).toBe("https");
    expect(info.host).toBe(new URL(url).host);
    expect(info.protocol).toBe("HTTP/1.1");
    // An h2 body without content-length goes to the app chunked.
    const echoed = await h2Request(session, { method: "POST", path: "/echo", body: "ping over h2" });
    expect(echoed.status).toBe(200);
    expect(echoed.body.toString()).toBe("ping over h2");
  });
});
