// HTTP/2 on the native server, in cleartext (h2c) and over TLS: protocol selection,
// streaming with flow control, trailers, resets, stream ids, concurrency, settings,
// graceful stop, and real clients (node:http2, undici, curl).
import { execFile } from "node:child_process";
import crypto from "node:crypto";
import type http2 from "node:http2";
import { promisify } from "node:util";
import {
  Http2ErrorCode,
  IHttpRequestTrailersFeature,
  IHttpResetFeature,
  IHttpResponseTrailersFeature,
  IStreamIdFeature,
  silentLogger,
  WebApplication,
  type WebApplicationOptions,
} from "peregrine";
import { Agent, fetch as undiciFetch } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  hasOpenssl,
  makeCertificates,
  removeCertificates,
  requireTool,
  type TestCertificates,
} from "./support/certs.js";
import { closeSession, connectH2, h2Request } from "./support/h2.js";
import { RawClient } from "./support/server.js";

const run = promisify(execFile);
const haveOpenssl = requireTool("openssl", hasOpenssl());
let certs: TestCertificates;
const apps: WebApplication[] = [];
const sessions: http2.ClientHttp2Session[] = [];

beforeAll(() => {
  if (haveOpenssl) certs = makeCertificates();
});
afterAll(() => removeCertificates(certs));
afterEach(async () => {
  await Promise.all(sessions.splice(0).map(closeSession));
  await Promise.all(apps.splice(0).map((a) => a.stop()));
});

function routes(app: WebApplication): void {
  app.mapGet("/", (ctx) => ctx.request.protocol);
  app.mapPost("/echo", (ctx) => ctx.request.body);
  app.mapGet("/stream-id", (ctx) => String(ctx.features.get(IStreamIdFeature)?.streamId ?? "none"));
  app.mapPost("/trailers", async (ctx) => {
    const body = await ctx.request.bytes();
    const requestTrailers = ctx.features.get(IHttpRequestTrailersFeature);
    const responseTrailers = ctx.features.get(IHttpResponseTrailersFeature);
    if (requestTrailers === undefined || responseTrailers === undefined) throw new Error("no trailers features");
    responseTrailers.trailers.set("x-body-sha256", crypto.createHash("sha256").update(body).digest("hex"));
    responseTrailers.trailers.set("x-echo-checksum", requestTrailers.trailers.get("x-checksum") ?? "missing");
    await ctx.response.write("streamed ");
    await ctx.response.end("body");
  });
  app.mapGet("/reset-before", (ctx) => {
    ctx.features.get(IHttpResetFeature)?.reset(Http2ErrorCode.ENHANCE_YOUR_CALM);
  });
  app.mapGet("/reset-after", async (ctx) => {
    await ctx.response.write("partial");
    ctx.features.get(IHttpResetFeature)?.reset(Http2ErrorCode.CANCEL);
  });
  app.mapGet("/throw", () => {
    throw new Error("boom");
  });
}

async function start(options: Partial<WebApplicationOptions> = {}, configure: (app: WebApplication) => void = routes) {
  const app = WebApplication.create({ urls: ["http://127.0.0.1:0"], logger: silentLogger, ...options });
  configure(app);
  apps.push(app);
  await app.start();
  return app;
}

async function session(url: string, options: http2.SecureClientSessionOptions = {}) {
  const s = await connectH2(url, url.startsWith("https") ? { ca: certs.ca.cert, ...options } : options);
  sessions.push(s);
  return s;
}

function sha256(data: Buffer): string {
  return crypto.createHash("sha256").update(data).digest("hex");
}

async function* chunks(total: number, size: number): AsyncIterable<Buffer> {
  const block = crypto.randomBytes(size);
  for (let sent = 0; sent < total; sent += size) yield block.subarray(0, Math.min(size, total - sent));
}

/** The tests that must hold the same in cleartext and over TLS. */
for (const mode of ["h2c", "h2 over TLS"] as const) {
  describe.runIf(haveOpenssl)(`HTTP/2 (${mode})`, () => {
    async function serve(options: Partial<WebApplicationOptions> = {}, more?: (app: WebApplication) => void) {
      const tlsOptions: Partial<WebApplicationOptions> =
        mode === "h2c"
          ? {}
          : { urls: ["https://127.0.0.1:0"], tls: { cert: certs.server.cert, key: certs.server.key } };
      const app = await start({ ...tlsOptions, ...options }, (a) => {
        routes(a);
        more?.(a);
      });
      return { app, url: app.urls[0] as string };
    }

    it("serves requests as HTTP/2 and reports the stream id", async () => {
      const { url } = await serve();
      const s = await session(url);
      const first = await h2Request(s);
      expect(first.status).toBe(200);
      expect(first.body.toString()).toBe("HTTP/2");
      for (let i = 0; i < 3; i++) {
        const r = await h2Request(s, { path: "/stream-id" });
        expect(r.body.toString()).toBe(String(r.streamId));
      }
    });

    it("streams 16 MiB both ways through the flow-control windows", async () => {
      const { url } = await serve();
      const s = await session(url);
      const total = 16 * 1024 * 1024;
      const expected = crypto.createHash("sha256");
      async function* body() {
        for await (const c of chunks(total, 64 * 1024)) {
          expected.update(c);
          yield c;
        }
      }
      const r = await h2Request(s, { method: "POST", path: "/echo", body: body(), timeoutMs: 60_000 });
      expect(r.status).toBe(200);
      expect(r.body.length).toBe(total);
      expect(sha256(r.body)).toBe(expected.digest("hex"));
    });

    it("carries trailers both ways", async () => {
      const { url } = await serve();
      const s = await session(url);
      const payload = Buffer.from("payload with trailers");
      const r = await h2Request(s, {
        method: "POST",
        path: "/trailers",
        body: payload,
        trailers: { "x-checksum": "abc123" },
      });
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe("streamed body");
      expect(r.trailers?.["x-body-sha256"]).toBe(sha256(payload));
      expect(r.trailers?.["x-echo-checksum"]).toBe("abc123");
    });

    it("resets a stream with the chosen error code, before and after the response started", async () => {
      const { url } = await serve();
      const s = await session(url);
      const before = await h2Request(s, { path: "/reset-before" });
      expect(before.rstCode).toBe(Http2ErrorCode.ENHANCE_YOUR_CALM);
      expect(before.status).toBe(0);
      // RST_STREAM discards frames still queued for the stream, so the client may or
      // may not have seen the head and the partial body by then.
      const after = await h2Request(s, { path: "/reset-after" });
      expect(after.rstCode).toBe(Http2ErrorCode.CANCEL);
      expect([0, 200]).toContain(after.status);
      expect("partial".startsWith(after.body.toString())).toBe(true);
      // The connection lives on.
      expect((await h2Request(s)).status).toBe(200);
    });

    it("enforces maxRequestBodySize with 413 and resets on ctx.abort()", async () => {
      const { url } = await serve({ limits: { maxRequestBodySize: 1024 } }, (app) => {
        app.mapPost("/limited", async (ctx) => `${(await ctx.request.bytes()).length}`);
        app.mapGet("/abort", (ctx) => ctx.abort());
      });
      const s = await session(url);
      const small = await h2Request(s, { method: "POST", path: "/limited", body: Buffer.alloc(1000) });
      expect(small.body.toString()).toBe("1000");
      const large = await h2Request(s, { method: "POST", path: "/limited", body: Buffer.alloc(4096) });
      expect(large.status).toBe(413);
      const aborted = await h2Request(s, { path: "/abort" });
      expect(aborted.rstCode).toBe(Http2ErrorCode.INTERNAL_ERROR);
      expect((await h2Request(s)).status).toBe(200);
    });

    it("does not buffer an upload the handler does not read: flow control pushes back", async () => {
      let release!: () => void;
      const released = new Promise<void>((r) => {
        release = r;
      });
      const { url } = await serve({}, (app) =>
        app.mapPost("/later", async (ctx) => {
          await released;
          return `${(await ctx.request.bytes()).length}`;
        }),
      );
      const s = await session(url);
      const stream = s.request({ ":method": "POST", ":path": "/later" });
      stream.on("error", () => {});
      const chunk = Buffer.alloc(64 * 1024, 1);
      let written = 0;
      // Write until the client's buffer stays full: the server's windows are exhausted.
      for (;;) {
        written += chunk.length;
        if (!stream.write(chunk)) {
          const drained = await Promise.race([
            new Promise<boolean>((r) => stream.once("drain", () => r(true))),
            new Promise<boolean>((r) => setTimeout(() => r(false), 500)),
          ]);
          if (!drained) break;
        }
        if (written > 64 * 1024 * 1024) break;
      }
      // The stream window is 768 KiB (connection 1 MiB); node buffers a little more.
      expect(written).toBeLessThan(4 * 1024 * 1024);
      const response = new Promise<string>((resolve) => {
        let body = "";
        stream.on("data", (c: Buffer) => {
          body += c.toString();
        });
        stream.on("end", () => resolve(body));
      });
      release();
      stream.end();
      expect(Number(await response)).toBe(written);
    });

    it("answers a throwing handler with 500 and keeps the connection", async () => {
      const { url } = await serve();
      const s = await session(url);
      expect((await h2Request(s, { path: "/throw" })).status).toBe(500);
      expect((await h2Request(s)).body.toString()).toBe("HTTP/2");
    });

    it("runs 100 concurrent streams on one connection", async () => {
      let arrived = 0;
      let release!: () => void;
      const all = new Promise<void>((r) => {
        release = r;
      });
      // Each request waits until all 100 are in flight at once.
      const { url } = await serve({}, (app) =>
        app.mapGet("/barrier", async () => {
          arrived++;
          if (arrived === 100) release();
          await all;
          return "released";
        }),
      );
      const s = await session(url);
      expect(s.remoteSettings.maxConcurrentStreams).toBe(100);
      const responses = await Promise.all(Array.from({ length: 100 }, () => h2Request(s, { path: "/barrier" })));
      expect(responses.every((r) => r.status === 200 && r.body.toString() === "released")).toBe(true);
      expect(new Set(responses.map((r) => r.streamId)).size).toBe(100);
    });

    it("fires ctx.signal when the client resets the stream", async () => {
      let aborted!: () => void;
      const abortedPromise = new Promise<void>((r) => {
        aborted = r;
      });
      let arrived!: () => void;
      const arrivedPromise = new Promise<void>((r) => {
        arrived = r;
      });
      const { url } = await serve({}, (app) =>
        app.mapGet("/hang", async (ctx) => {
          ctx.signal.addEventListener("abort", () => aborted());
          arrived();
          await abortedPromise;
        }),
      );
      const s = await session(url);
      const stream = s.request({ ":path": "/hang" });
      stream.on("error", () => {});
      await arrivedPromise;
      stream.close(0x8);
      await expect(
        Promise.race([
          abortedPromise,
          new Promise((_, reject) => setTimeout(() => reject(new Error("no abort")), 5000)),
        ]),
      ).resolves.toBeUndefined();
    });

    it("closes streams still open when shutdownTimeout runs out", async () => {
      let arrived!: () => void;
      const arrivedPromise = new Promise<void>((r) => {
        arrived = r;
      });
      const { app, url } = await serve({ shutdownTimeout: 200 }, (a) =>
        a.mapGet("/never", async () => {
          arrived();
          await new Promise(() => {});
        }),
      );
      const s = await session(url);
      const pending = h2Request(s, { path: "/never" });
      await arrivedPromise;
      const started = Date.now();
      await app.stop();
      expect(Date.now() - started).toBeLessThan(3000);
      const r = await pending;
      expect(r.status).toBe(0);
    });

    it("finishes in-flight streams on stop(), after GOAWAY", async () => {
      let arrived!: () => void;
      const arrivedPromise = new Promise<void>((r) => {
        arrived = r;
      });
      const { app, url } = await serve({}, (a) =>
        a.mapGet("/slow", async () => {
          arrived();
          await new Promise((r) => setTimeout(r, 300));
          return "finished";
        }),
      );
      const s = await session(url);
      let goaway = false;
      s.on("goaway", () => {
        goaway = true;
      });
      const pending = h2Request(s, { path: "/slow" });
      await arrivedPromise;
      const stopped = app.stop();
      const r = await pending;
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe("finished");
      await stopped;
      expect(goaway).toBe(true);
    });
  });
}

describe.runIf(haveOpenssl)("HTTP/2 endpoints and clients", () => {
  it("detects h2c by its preface on a mixed cleartext endpoint", async () => {
    const app = await start();
    const url = app.urls[0] as string;
    expect(await (await fetch(url)).text()).toBe("HTTP/1.1");
    expect((await h2Request(await session(url))).body.toString()).toBe("HTTP/2");
  });

  it("closes with FIN, not RST, when the client's bytes were never read", async () => {
    const app = await start({ urls: [], endpoints: [{ url: "http://127.0.0.1:0", protocols: "http2" }] });
    const port = Number(new URL(app.urls[0] as string).port);
    const client = await RawClient.connect(port);
    let reset = false;
    client.socket.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "ECONNRESET") reset = true;
    });
    // An invalid preface followed by more than the server will ever read.
    client.write(Buffer.concat([Buffer.from("INVALID CONNECTION PREFACE\r\n\r\n"), Buffer.alloc(256 * 1024, 0x41)]));
    const received = await client.waitForClose();
    expect(reset).toBe(false);
    // What the server sent before closing (its SETTINGS, then GOAWAY) arrived intact.
    expect(received.length).toBeGreaterThan(0);
    client.close();
  });

  it("honours endpoints[].protocols in cleartext", async () => {
    const app = await start({
      urls: [],
      endpoints: [
        { url: "http://127.0.0.1:0", protocols: "http2" },
        { url: "http://127.0.0.1:0", protocols: "http1" },
      ],
    });
    const [h2Only, h1Only] = app.urls as [string, string];
    expect((await h2Request(await session(h2Only))).body.toString()).toBe("HTTP/2");
    await expect(fetch(h2Only)).rejects.toThrow();
    expect(await (await fetch(h1Only)).text()).toBe("HTTP/1.1");
    // The preface is not an HTTP/1.1 request: no HTTP/2 response comes back.
    const refused = await connectH2(h1Only).then(
      (s) => h2Request(s, { timeoutMs: 3000 }).finally(() => s.destroy()),
      () => ({ status: 0 }),
    );
    expect(refused.status).toBe(0);
  });

  it("offers only the allowed protocols by ALPN over TLS", async () => {
    const app = await start({
      urls: [],
      tls: { cert: certs.server.cert, key: certs.server.key },
      endpoints: [{ url: "https://127.0.0.1:0", protocols: "http1" }],
    });
    const url = app.urls[0] as string;
    await expect(connectH2(url, { ca: certs.ca.cert }).then((s) => s.destroy())).rejects.toThrow();
  });

  it("advertises limits.http2 in its SETTINGS and validates them", async () => {
    const app = await start({
      limits: {
        http2: {
          maxStreamsPerConnection: 7,
          headerTableSize: 8192,
          maxFrameSize: 32_768,
          maxRequestHeaderFieldSize: 16_384,
          initialStreamWindowSize: 131_072,
        },
      },
    });
    const s = await session(app.urls[0] as string);
    await new Promise<void>((r) =>
      s.remoteSettings.maxConcurrentStreams === 7 ? r() : s.once("remoteSettings", () => r()),
    );
    expect(s.remoteSettings).toMatchObject({
      maxConcurrentStreams: 7,
      headerTableSize: 8192,
      maxFrameSize: 32_768,
      maxHeaderListSize: 16_384,
      initialWindowSize: 131_072,
    });
    expect(() => WebApplication.create({ limits: { http2: { maxFrameSize: 1000 } } })).toThrow(
      /limits\.http2\.maxFrameSize/,
    );
    expect(() => WebApplication.create({ limits: { http2: { nope: 1 } as never } })).toThrow(/unknown limit/);
    expect(() =>
      WebApplication.create({ endpoints: [{ url: "http://127.0.0.1:0", protocols: "h3" as never }] }),
    ).toThrow(/endpoints\[0\]\.protocols/);
  });

  it("sends keep-alive PINGs when keepAlivePingDelay is set", async () => {
    const app = await start({ limits: { http2: { keepAlivePingDelay: 1000 } } });
    const s = await session(app.urls[0] as string);
    const pinged = new Promise<void>((resolve) => s.once("ping", () => resolve()));
    await expect(
      Promise.race([pinged, new Promise((_, reject) => setTimeout(() => reject(new Error("no PING")), 5000))]),
    ).resolves.toBeUndefined();
  });

  it("serves undici with allowH2 over TLS", async () => {
    const app = await start({ urls: ["https://127.0.0.1:0"], tls: { cert: certs.server.cert, key: certs.server.key } });
    const dispatcher = new Agent({ allowH2: true, connect: { ca: certs.ca.cert } });
    try {
      const res = await undiciFetch(`${app.urls[0]}/`, { dispatcher });
      expect(await res.text()).toBe("HTTP/2");
      const echoed = await undiciFetch(`${app.urls[0]}/echo`, { dispatcher, method: "POST", body: "undici over h2" });
      expect(await echoed.text()).toBe("undici over h2");
    } finally {
      await dispatcher.close();
    }
  });

  it("serves curl --http2-prior-knowledge in cleartext", async () => {
    const haveCurl = requireTool(
      "curl",
      await run("curl", ["--version"]).then(
        () => true,
        () => false,
      ),
    );
    if (!haveCurl) return;
    const app = await start();
    const { stdout } = await run(
      "curl",
      ["-sS", "--http2-prior-knowledge", "-w", " %{http_version}", `${app.urls[0]}/`],
      { timeout: 10_000 },
    );
    expect(stdout).toBe("HTTP/2 2");
    const posted = await run(
      "curl",
      ["-sS", "--http2-prior-knowledge", "--data-binary", "curl body", `${app.urls[0]}/echo`],
      { timeout: 10_000 },
    );
    expect(posted.stdout).toBe("curl body");
  });
});
