// The conformance cases: each is written once against the server contract and runs on
// every server that has the capabilities it needs.
import crypto from "node:crypto";
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import net from "node:net";
import {
  Http2ErrorCode,
  type HttpContext,
  IHttpMaxRequestBodySizeFeature,
  IHttpRequestTrailersFeature,
  IHttpResetFeature,
  IHttpResponseTrailersFeature,
  IHttpUpgradeFeature,
  IStreamIdFeature,
} from "peregrine";
import { expect } from "vitest";
import type { TestCertificates } from "../support/certs.js";
import { RawClient } from "../support/server.js";
import { type Capability, type ServerUnderTest, sleep, startOn, within } from "./harness.js";

export interface ConformanceCase {
  name: string;
  needs: Capability[];
  run(sut: ServerUnderTest, env: CaseEnvironment): Promise<void>;
}

export interface CaseEnvironment {
  /** Certificates for the TLS cases (made once per run with openssl). */
  certificates(): TestCertificates;
}

const MiB = 1024 * 1024;

/** Reads a response body to the end and returns its length and SHA-256. */
async function digest(body: ReadableStream<Uint8Array> | null): Promise<{ length: number; sha256: string }> {
  const hash = crypto.createHash("sha256");
  let length = 0;
  if (body !== null) {
    for await (const chunk of body) {
      hash.update(chunk);
      length += chunk.byteLength;
    }
  }
  return { length, sha256: hash.digest("hex") };
}

/** A deterministic pseudo-random payload, produced in 64 KiB chunks. */
function payload(size: number): { chunks: () => AsyncGenerator<Uint8Array>; sha256: string } {
  const block = crypto.createHash("sha512").update("peregrine").digest();
  const chunk = Buffer.alloc(64 * 1024);
  for (let i = 0; i < chunk.length; i += block.length) block.copy(chunk, i);
  const hash = crypto.createHash("sha256");
  for (let left = size; left > 0; left -= chunk.length) hash.update(chunk.subarray(0, Math.min(left, chunk.length)));
  return {
    sha256: hash.digest("hex"),
    async *chunks() {
      for (let left = size; left > 0; left -= chunk.length) yield chunk.subarray(0, Math.min(left, chunk.length));
    },
  };
}

function streamOf(chunks: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const iterator = chunks[Symbol.asyncIterator]();
  return new ReadableStream({
    async pull(controller) {
      const { value, done } = await iterator.next();
      if (done) controller.close();
      else controller.enqueue(new Uint8Array(value));
    },
  });
}

/** Echo of what the app saw of a request, as JSON. */
function describeRequest(ctx: HttpContext) {
  return {
    method: ctx.request.method,
    path: ctx.request.path,
    pathBase: ctx.request.pathBase,
    queryString: ctx.request.queryString,
    rawTarget: ctx.request.rawTarget,
    protocol: ctx.request.protocol,
    scheme: ctx.request.scheme,
  };
}

/** One HTTP/2 request with node:http2; resolves with status, headers, body and trailers. */
function h2Request(
  authority: string,
  headers: http2.OutgoingHttpHeaders,
  options: http2.SecureClientSessionOptions = {},
  body?: string,
): Promise<{
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
  trailers: http2.IncomingHttpHeaders;
  alpn: string | undefined;
  resetCode?: number;
}> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(authority, options);
    session.on("error", reject);
    const stream = session.request(headers, { endStream: body === undefined });
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    let text = "";
    stream.setEncoding("utf8");
    stream.on("response", (h) => {
      responseHeaders = h;
    });
    stream.on("trailers", (t) => {
      trailers = t;
    });
    stream.on("data", (d: string) => {
      text += d;
    });
    const finish = (resetCode?: number) => {
      const alpn = session.alpnProtocol;
      session.close();
      resolve({
        status: Number(responseHeaders[":status"] ?? 0),
        headers: responseHeaders,
        body: text,
        trailers,
        alpn,
        ...(resetCode !== undefined ? { resetCode } : {}),
      });
    };
    stream.on("end", () => finish());
    stream.on("close", () => {
      if (stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) finish(stream.rstCode);
    });
    stream.on("error", () => {});
    if (body !== undefined) stream.end(body);
  });
}

export const CASES: ConformanceCase[] = [
  {
    name: "methods",
    needs: [],
    async run(sut) {
      const t = await startOn(sut, (app) => {
        app.map("*", "/m", (ctx) => ctx.request.method);
        app.mapGet("/only-get", () => "get");
      });
      for (const method of ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PURGE"]) {
        const res = await t.fetch("/m", {
          method,
          ...(method === "POST" || method === "PUT" || method === "PATCH" ? { body: "" } : {}),
        });
        expect(res.status, method).toBe(200);
        expect(await res.text()).toBe(method);
      }
      const wrong = await t.fetch("/only-get", { method: "POST", body: "x" });
      expect(wrong.status).toBe(405);
      expect(wrong.headers.get("allow")).toBe("GET");
    },
  },
  {
    name: "paths, queries and percent-encoding",
    needs: [],
    async run(sut) {
      const t = await startOn(sut, (app) => {
        app.mapGet("/users/{id}", (ctx) => ({ id: ctx.request.routeValues.id, ...describeRequest(ctx) }));
        app.mapGet("/{*rest}", (ctx) => ({
          ...describeRequest(ctx),
          x: ctx.request.query.getAll("x"),
          y: ctx.request.query.get("y"),
        }));
        app.map("/api", (api) => api.mapGet("/items", (ctx) => describeRequest(ctx)));
      });
      const res = await t.fetch("/a%20b/c%2Fd/%E2%82%AC?x=1&y=%C3%A9+z&x=2");
      expect(await res.json()).toMatchObject({
        path: "/a b/c%2Fd/€",
        queryString: "?x=1&y=%C3%A9+z&x=2",
        rawTarget: "/a%20b/c%2Fd/%E2%82%AC?x=1&y=%C3%A9+z&x=2",
        x: ["1", "2"],
        y: "é z",
      });
      expect(await (await t.fetch("/users/j%C3%B6rg")).json()).toMatchObject({ id: "jörg", path: "/users/jörg" });
      expect(await (await t.fetch("/api/items?q")).json()).toMatchObject({
        pathBase: "/api",
        path: "/items",
        queryString: "?q",
      });
    },
  },
  {
    name: "headers: case-insensitive names",
    needs: [],
    async run(sut) {
      const t = await startOn(sut, (app) =>
        app.mapGet("/h", (ctx) => {
          ctx.response.headers.set("X-Mixed-Case", "Value-Kept");
          return [
            ctx.request.headers.get("x-custom-header"),
            ctx.request.headers.get("X-CUSTOM-HEADER"),
            ctx.request.headers.has("X-Custom-Header"),
          ];
        }),
      );
      const res = await t.fetch("/h", { headers: { "X-Custom-Header": "Some Value" } });
      expect(await res.json()).toEqual(["Some Value", "Some Value", true]);
      expect(res.headers.get("x-mixed-case")).toBe("Value-Kept");
    },
  },
  {
    name: "headers: repeated request and response headers",
    needs: [],
    async run(sut) {
      const t = await startOn(sut, (app) =>
        app.mapGet("/r", (ctx) => {
          ctx.response.headers.append("x-r", "1");
          ctx.response.headers.append("x-r", "2");
          ctx.response.headers.append("set-cookie", "a=1");
          ctx.response.headers.append("set-cookie", "b=2");
          return { all: ctx.request.headers.getAll("x-rep"), joined: ctx.request.headers.get("x-rep") };
        }),
      );
      let seen: unknown;
      if (t.sut.capabilities.has("wire")) {
        // fetch's Headers would join repeats before they reach the wire; a raw request keeps them apart.
        const raw = await t.raw();
        raw.write("GET /r HTTP/1.1\r\nHost: x\r\nX-Rep: a\r\nX-Rep: b\r\nConnection: close\r\n\r\n");
        const text = (await raw.waitForClose()).toString("latin1");
        raw.close();
        seen = JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4).replace(/^[0-9a-f]+\r\n|\r\n0\r\n\r\n$/g, ""));
        expect(text.match(/^x-r: \d$/gim)?.length).toBe(2);
      } else {
        const res = await t.fetch("/r", {
          headers: [
            ["x-rep", "a"],
            ["x-rep", "b"],
          ],
        });
        seen = await res.json();
        expect(res.headers.get("x-r")).toBe("1, 2");
        expect(res.headers.getSetCookie()).toEqual(["a=1", "b=2"]);
      }
      expect(seen).toEqual({ all: ["a", "b"], joined: "a, b" });
      const res = await t.fetch("/r");
      expect(res.headers.get("x-r")).toBe("1, 2");
      expect(res.headers.getSetCookie()).toEqual(["a=1", "b=2"]);
    },
  },
  {
    name: "headers: large values (16 KiB in, 8 KiB out)",
    needs: [],
    async run(sut) {
      // fetch (undici) takes response heads up to 16 KiB, so the response's header is smaller.
      const bigIn = "i".repeat(16 * 1024);
      const bigOut = "o".repeat(8 * 1024);
      const t = await startOn(sut, (app) =>
        app.mapGet("/big", (ctx) => {
          ctx.response.headers.set("x-big-out", bigOut);
          return String(ctx.request.headers.get("x-big-in")?.length);
        }),
      );
      const res = await t.fetch("/big", { headers: { "x-big-in": bigIn } });
      expect(await res.text()).toBe(String(bigIn.length));
      expect(res.headers.get("x-big-out")).toBe(bigOut);
    },
  },
  {
    name: "bodies: empty",
    needs: [],
    async run(sut) {
      const t = await startOn(sut, (app) => {
        app.mapPost("/len", async (ctx) => String((await ctx.request.bytes()).length));
        app.mapGet("/none", () => undefined);
        app.mapGet("/empty-string", () => "");
      });
      expect(await (await t.fetch("/len", { method: "POST" })).text()).toBe("0");
      expect(await (await t.fetch("/len", { method: "POST", body: "" })).text()).toBe("0");
      const none = await t.fetch("/none");
      expect(none.status).toBe(200);
      expect(await none.text()).toBe("");
      const empty = await t.fetch("/empty-string");
      expect(await empty.text()).toBe("");
      expect(empty.headers.get("content-length")).toBe("0");
    },
  },
  {
    name: "bodies: text bodies encoded as UTF-8, ASCII or not, short or long",
    needs: [],
    async run(sut) {
      const texts = ["plain ascii", "ascii first, then €, 日本 and 😀", "😀 first", `${"x".repeat(200)}é`, ""];
      const t = await startOn(sut, (app) =>
        app.mapGet("/text/{i:int}", (ctx) => texts[Number(ctx.request.routeValues.i)] ?? "?"),
      );
      for (const [i, text] of texts.entries()) {
        const res = await t.fetch(`/text/${i}`);
        const bytes = Buffer.from(await res.arrayBuffer());
        expect(bytes.equals(Buffer.from(text, "utf8"))).toBe(true);
        expect(res.headers.get("content-length")).toBe(String(bytes.length));
      }
    },
  },
  {
    name: "bodies: fixed length (Content-Length)",
    needs: [],
    async run(sut) {
      const t = await startOn(sut, (app) =>
        app.mapPost("/echo", async (ctx) => ({ length: ctx.request.contentLength, text: await ctx.request.text() })),
      );
      const res = await t.fetch("/echo", { method: "POST", body: "hello, wörld" });
      expect(await res.json()).toEqual({ length: 13, text: "hello, wörld" });
      expect(res.headers.get("content-length")).toBe(
        String(Buffer.byteLength(JSON.stringify({ length: 13, text: "hello, wörld" }))),
      );
    },
  },
  {
    name: "bodies: chunked both ways",
    needs: ["wire"],
    async run(sut) {
      const t = await startOn(sut, (app) =>
        app.mapPost("/echo", async function* (ctx) {
          for await (const chunk of ctx.request.body) yield chunk;
          yield "|end";
        }),
      );
      const raw = await t.raw();
      raw.write(
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
      );
      const text = (await raw.waitForClose()).toString("latin1");
      raw.close();
      expect(text).toMatch(/^HTTP\/1\.1 200 /);
      expect(text.toLowerCase()).toContain("transfer-encoding: chunked");
      const body = text.slice(text.indexOf("\r\n\r\n") + 4);
      const decoded = body
        .split("\r\n")
        .filter((_, i) => i % 2 === 1)
        .join("");
      expect(decoded).toBe("hello world|end");
      expect(body.endsWith("0\r\n\r\n")).toBe(true);
    },
  },
  {
    name: "bodies: streamed both ways, interleaved",
    needs: [],
    async run(sut) {
      const t = await startOn(sut, (app) => app.mapPost("/echo", (ctx) => ctx.request.body));
      let release: (() => void) | undefined;
      let step = 0;
      const encoder = new TextEncoder();
      // The client sends its next chunk only after the echo of the last one came back.
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (step === 4) {
            controller.close();
            return;
          }
          controller.enqueue(encoder.encode(`ping${step++};`));
          await new Promise<void>((resolve) => {
            release = resolve;
          });
        },
      });
      const res = await within(
        t.fetch("/echo", { method: "POST", body, duplex: "half" } as RequestInit),
        5000,
        "no response head",
      );
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      let echoed = "";
      for (;;) {
        const { value, done } = await within(reader.read(), 5000, `echo stalled after "${echoed}"`);
        if (done) break;
        echoed += Buffer.from(value).toString();
        release?.();
      }
      expect(echoed).toBe("ping0;ping1;ping2;ping3;");
    },
  },
  {
    name: "bodies: large (20 MiB up and down)",
    needs: [],
    async run(sut) {
      const size = 20 * MiB;
      const data = payload(size);
      const t = await startOn(sut, (app) => {
        app.mapPost("/digest", async (ctx) => {
          const hash = crypto.createHash("sha256");
          let length = 0;
          for await (const chunk of ctx.request.body) {
            hash.update(chunk);
            length += chunk.byteLength;
          }
          return { length, sha256: hash.digest("hex") };
        });
        app.mapGet("/download", () => data.chunks());
      });
      const up = await t.fetch("/digest", {
        method: "POST",
        body: streamOf(data.chunks()),
        duplex: "half",
      } as RequestInit);
      expect(await up.json()).toEqual({ length: size, sha256: data.sha256 });
      const down = await t.fetch("/download");
      expect(await digest(down.body)).toEqual({ length: size, sha256: data.sha256 });
    },
  },
  {
    name: "status codes and reason phrases",
    needs: [],
    async run(sut) {
      const t = await startOn(sut, (app) => {
        app.mapGet("/status/{code}", (ctx) => {
          ctx.response.statusCode = Number(ctx.request.routeValues.code);
          const reason = ctx.request.query.get("reason");
          if (reason !== null) ctx.response.reasonPhrase = reason;
        });
      });
      for (const [code, text] of [
        [200, "OK"],
        [201, "Created"],
        [204, "No Content"],
        [404, "Not Found"],
        [503, "Service Unavailable"],
      ] as const) {
        const res = await t.fetch(`/status/${code}`);
        expect(res.status).toBe(code);
        expect(res.statusText).toBe(text);
        expect(await res.text()).toBe("");
      }
      const custom = await t.fetch("/status/299?reason=Fine%20Thanks");
      expect(custom.status).toBe(299);
      expect(custom.statusText).toBe("Fine Thanks");
      const teapot = await t.fetch("/status/418?reason=I%27m%20a%20teapot");
      expect([teapot.status, teapot.statusText]).toEqual([418, "I'm a teapot"]);
    },
  },
  {
    name: "handler error before the response starts: 500, the connection lives on",
    needs: [],
    async run(sut) {
      const t = await startOn(sut, (app) => {
        app.mapGet("/throw", () => {
          throw new Error("boom");
        });
        app.mapGet("/reject", async (ctx) => {
          ctx.response.headers.set("x-dropped", "1");
          await sleep(1);
          throw new Error("async boom");
        });
        app.mapGet("/ok", () => "ok");
      });
      const thrown = await t.fetch("/throw");
      expect(thrown.status).toBe(500);
      const rejected = await t.fetch("/reject");
      expect(rejected.status).toBe(500);
      expect(rejected.headers.get("x-dropped")).toBeNull();
      expect(await (await t.fetch("/ok")).text()).toBe("ok");
      if (t.sut.capabilities.has("wire")) {
        const raw = await t.raw();
        raw.write("GET /throw HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
        const text = (await raw.waitFor((b) => b.toString("latin1").includes("\r\n\r\nok"))).toString("latin1");
        raw.close();
        expect(text).toMatch(/^HTTP\/1\.1 500 /);
        expect(text).toMatch(/HTTP\/1\.1 200 [\s\S]*\r\n\r\nok$/);
      }
    },
  },
  {
    name: "handler error after the response starts: the response is aborted",
    needs: ["lifetime"],
    async run(sut) {
      const t = await startOn(sut, (app) => {
        app.mapGet("/partial", async (ctx) => {
          await ctx.response.write("partial;");
          await sleep(20);
          throw new Error("boom after start");
        });
        app.mapGet("/ok", () => "ok");
      });
      const res = await t.fetch("/partial");
      expect(res.status).toBe(200);
      await expect(within(res.text(), 5000, "the partial response was not aborted")).rejects.toThrow();
      expect(await (await t.fetch("/ok")).text()).toBe("ok");
    },
  },
  {
    name: "client abort fires ctx.signal (before and during the response)",
    needs: ["lifetime"],
    async run(sut) {
      const seen: string[] = [];
      let entered!: () => void;
      let aborted!: () => void;
      const t = await startOn(sut, (app) => {
        app.mapGet("/wait/{phase}", async (ctx) => {
          const phase = ctx.request.routeValues.phase as string;
          const fired = new Promise<void>((resolve) =>
            ctx.signal.addEventListener("abort", () => resolve(), { once: true }),
          );
          if (phase === "during") await ctx.response.write("first;");
          entered();
          await fired;
          seen.push(phase);
          aborted();
        });
      });
      for (const phase of ["before", "during"]) {
        const inHandler = new Promise<void>((resolve) => {
          entered = resolve;
        });
        const sawAbort = new Promise<void>((resolve) => {
          aborted = resolve;
        });
        const controller = new AbortController();
        const pending = t.fetch(`/wait/${phase}`, { signal: controller.signal });
        if (phase === "during") {
          const res = await within(pending, 5000, "no response head");
          await (res.body as ReadableStream<Uint8Array>).getReader().read();
        } else pending.catch(() => {});
        await within(inHandler, 5000, "the handler did not run");
        controller.abort();
        await within(sawAbort, 5000, `ctx.signal did not fire when the client aborted ${phase} the response`);
      }
      expect(seen).toEqual(["before", "during"]);
    },
  },
  {
    name: "ctx.abort() drops the request",
    needs: ["lifetime"],
    async run(sut) {
      const t = await startOn(sut, (app) => {
        app.mapGet("/drop", (ctx) => {
          ctx.abort();
          return "never sent";
        });
        app.mapGet("/ok", () => "ok");
      });
      await expect(
        within(
          t.fetch("/drop").then((r) => r.text()),
          5000,
          "no abort",
        ),
      ).rejects.toThrow();
      expect(await (await t.fetch("/ok")).text()).toBe("ok");
    },
  },
  {
    name: "HEAD: headers of the GET, no body",
    needs: [],
    async run(sut) {
      const t = await startOn(sut, (app) => app.map(["GET", "HEAD"], "/doc", () => "twelve bytes"));
      const get = await t.fetch("/doc");
      expect(await get.text()).toBe("twelve bytes");
      const head = await t.fetch("/doc", { method: "HEAD" });
      expect(head.status).toBe(200);
      expect(head.headers.get("content-length")).toBe("12");
      expect(head.headers.get("content-type")).toBe("text/plain; charset=utf-8");
      expect(await head.text()).toBe("");
      if (t.sut.capabilities.has("wire")) {
        // On the wire, the next response follows the HEAD response's head directly.
        const raw = await t.raw();
        raw.write("HEAD /doc HTTP/1.1\r\nHost: x\r\n\r\nGET /doc HTTP/1.1\r\nHost: x\r\n\r\n");
        const text = (await raw.waitFor((b) => b.toString("latin1").endsWith("twelve bytes"))).toString("latin1");
        raw.close();
        expect(RawClient.countResponses(Buffer.from(text, "latin1"))).toBe(2);
        expect(text.split("twelve bytes").length).toBe(2);
      }
    },
  },
  {
    name: "Expect: 100-continue",
    needs: ["wire", "continue"],
    async run(sut) {
      const t = await startOn(sut, (app) => {
        app.mapPost("/upload", async (ctx) => `got ${(await ctx.request.text()).length}`);
        app.mapPost("/reject", (ctx) => {
          ctx.response.statusCode = 417;
        });
      });
      const raw = await t.raw();
      raw.write("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
      await raw.waitFor((b) => b.toString("latin1").startsWith("HTTP/1.1 100 Continue\r\n\r\n"));
      raw.write("hello");
      const text = (await raw.waitFor((b) => b.toString("latin1").endsWith("got 5"))).toString("latin1");
      expect(text).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
      raw.take();
      // An app that answers without reading the body sends no 100 Continue.
      raw.write(
        "POST /reject HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
      );
      const rejected = (await raw.waitForClose()).toString("latin1");
      raw.close();
      expect(rejected).toMatch(/^HTTP\/1\.1 417 /);
    },
  },
  {
    name: "server addresses: port 0 resolved; localhost, [::1], *",
    needs: ["addresses"],
    async run(sut) {
      const t = await startOn(sut, (app) => app.mapGet("/", () => "here"));
      expect(t.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(t.port).toBeGreaterThan(0);
      expect(await (await t.fetch("/")).text()).toBe("here");
      await t.stop();
      const ipv6 = await new Promise<boolean>((resolve) => {
        const probe = net.createServer().once("error", () => resolve(false));
        probe.listen(0, "::1", () => probe.close(() => resolve(true)));
      });
      const localhost = await startOn(sut, (app) => app.mapGet("/", () => "both"), { urls: ["http://localhost:0"] });
      const ports = new Set(localhost.app.urls.map((u) => new URL(u).port));
      expect(ports.size).toBe(1);
      expect(localhost.app.urls[0]).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      if (ipv6) {
        expect(localhost.app.urls).toContain(`http://[::1]:${[...ports][0]}`);
        expect(await (await fetch(`http://[::1]:${[...ports][0]}/`)).text()).toBe("both");
      }
      await localhost.stop();
      if (sut.name === "custom") return; // the example binds IPs and localhost, not "*"
      const any = await startOn(sut, (app) => app.mapGet("/", () => "any"), { urls: ["http://*:0"] });
      expect(any.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
      expect(await (await fetch(`http://127.0.0.1:${any.port}/`)).text()).toBe("any");
      await any.stop();
      if (ipv6) {
        const v6 = await startOn(sut, (app) => app.mapGet("/", () => "v6"), { urls: ["http://[::1]:0"] });
        expect(v6.url).toMatch(/^http:\/\/\[::1\]:\d+$/);
        expect(await (await fetch(`${v6.url}/`)).text()).toBe("v6");
        await v6.stop();
      }
    },
  },
  {
    name: "connection and identifier features",
    needs: ["connection"],
    async run(sut) {
      const t = await startOn(sut, (app) =>
        app.mapGet("/c", (ctx) => ({
          id: ctx.connection.id,
          remoteAddress: ctx.connection.remoteAddress,
          localAddress: ctx.connection.localAddress,
          localPort: ctx.connection.localPort,
          remotePort: ctx.connection.remotePort,
          trace: ctx.traceIdentifier,
        })),
      );
      const a = (await (await t.fetch("/c")).json()) as Record<string, unknown>;
      const b = (await (await t.fetch("/c")).json()) as Record<string, unknown>;
      expect(a.trace).toMatch(/\S/);
      expect(a.trace).not.toBe(b.trace);
      expect(a.id).toMatch(/\S/);
      expect(a.remoteAddress).toBe("127.0.0.1");
      expect(a.localAddress).toBe("127.0.0.1");
      if (t.sut.capabilities.has("addresses")) {
        expect(a.localPort).toBe(t.port);
        expect(a.remotePort).toBeGreaterThan(0);
      }
    },
  },
  {
    name: "pipelining and keep-alive",
    needs: ["wire"],
    async run(sut) {
      const t = await startOn(sut, (app) =>
        app.mapGet("/n/{n}", async (ctx) => {
          const n = Number(ctx.request.routeValues.n);
          await sleep((5 - n) * 5); // later requests finish first; responses must still be in order
          return `r${n};`;
        }),
      );
      const raw = await t.raw();
      raw.write([1, 2, 3, 4, 5].map((n) => `GET /n/${n} HTTP/1.1\r\nHost: x\r\n\r\n`).join(""));
      const text = (
        await raw.waitFor((b) => RawClient.countResponses(b) === 5 && b.toString("latin1").endsWith("r5;"))
      ).toString("latin1");
      expect(text.match(/r\d;/g)).toEqual(["r1;", "r2;", "r3;", "r4;", "r5;"]);
      raw.write("GET /n/5 HTTP/1.1\r\nHost: x\r\n\r\n");
      await raw.waitFor((b) => RawClient.countResponses(b) === 6);
      expect(raw.closed).toBe(false);
      raw.close();
    },
  },
  {
    name: "trailers (chunked HTTP/1.1)",
    needs: ["wire", "trailers"],
    async run(sut) {
      const t = await startOn(sut, (app) =>
        app.mapPost("/t", async (ctx) => {
          const body = await ctx.request.text();
          const requestTrailers = ctx.features.get(IHttpRequestTrailersFeature);
          const responseTrailers = ctx.features.get(IHttpResponseTrailersFeature);
          expect(responseTrailers).toBeDefined();
          // Declared up front: on HTTP/1.1 the native server (hyper) sends only declared trailers.
          ctx.response.headers.set("trailer", "x-checksum");
          responseTrailers?.trailers.set("x-checksum", "abc123");
          await ctx.response.write(
            `${body}|${requestTrailers?.available ? requestTrailers.trailers.get("x-in") : "none"}`,
          );
        }),
      );
      const response = await new Promise<{ body: string; trailers: NodeJS.Dict<string> }>((resolve, reject) => {
        const req = http.request(
          { host: "127.0.0.1", port: t.port, method: "POST", path: "/t", headers: { trailer: "x-in", te: "trailers" } },
          (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (d: string) => {
              body += d;
            });
            res.on("end", () => resolve({ body, trailers: res.trailers }));
          },
        );
        req.on("error", reject);
        req.write("data");
        req.addTrailers({ "x-in": "trailer-value" });
        req.end();
      });
      expect(response.body).toBe("data|trailer-value");
      expect(response.trailers["x-checksum"]).toBe("abc123");
    },
  },
  {
    name: "limits: maxRequestBodySize answers 413",
    needs: ["limits"],
    async run(sut) {
      const t = await startOn(
        sut,
        (app) => {
          app.mapPost("/upload", async (ctx) => `read ${(await ctx.request.bytes()).length}`);
          app.mapPost("/raise", async (ctx) => {
            const feature = ctx.features.get(IHttpMaxRequestBodySizeFeature);
            expect(feature?.isReadOnly).toBe(false);
            if (feature) feature.maxRequestBodySize = 5000;
            return `read ${(await ctx.request.bytes()).length}`;
          });
        },
        { limits: { maxRequestBodySize: 1000 } },
      );
      expect(await (await t.fetch("/upload", { method: "POST", body: "x".repeat(1000) })).text()).toBe("read 1000");
      const declared = await t.fetch("/upload", { method: "POST", body: "x".repeat(1001) });
      expect(declared.status).toBe(413);
      const streamed = await t.fetch("/upload", {
        method: "POST",
        body: streamOf(payload(4000).chunks()),
        duplex: "half",
      } as RequestInit);
      expect(streamed.status).toBe(413);
      expect(await (await t.fetch("/raise", { method: "POST", body: "x".repeat(3000) })).text()).toBe("read 3000");
    },
  },
  {
    name: "limits: minRequestBodyDataRate answers 408 to a trickling body",
    needs: ["limits"],
    async run(sut) {
      const t = await startOn(
        sut,
        (app) => app.mapPost("/upload", async (ctx) => `read ${(await ctx.request.bytes()).length}`),
        {
          limits: { minRequestBodyDataRate: { bytesPerSecond: 1000, gracePeriod: 300 } },
        },
      );
      let timer: NodeJS.Timeout | undefined;
      // One byte every 100 ms: 10 bytes/s, far below the 1000 the limit asks for.
      const trickle = new ReadableStream<Uint8Array>({
        start(controller) {
          timer = setInterval(() => {
            try {
              controller.enqueue(new Uint8Array([120]));
            } catch {
              clearInterval(timer);
            }
          }, 100);
        },
        cancel() {
          clearInterval(timer);
        },
      });
      try {
        const res = await within(
          t.fetch("/upload", { method: "POST", body: trickle, duplex: "half" } as RequestInit),
          5000,
          "a trickling body was not cut off",
        );
        expect(res.status).toBe(408);
      } finally {
        clearInterval(timer);
      }
      expect(await (await t.fetch("/upload", { method: "POST", body: "x".repeat(5000) })).text()).toBe("read 5000");
    },
  },
  {
    name: "limits: request line, header count and size (414, 431), headers timeout (408)",
    needs: ["wire", "headLimits"],
    async run(sut) {
      const t = await startOn(sut, (app) => app.mapGet("/{*rest}", () => "ok"), {
        limits: {
          maxRequestLineSize: 100,
          maxRequestHeaderCount: 5,
          maxRequestHeadersTotalSize: 300,
          requestHeadersTimeout: 300,
        },
      });
      const exchange = async (request: string) => {
        const raw = await t.raw();
        raw.write(request);
        const text = (await raw.waitForClose(5000)).toString("latin1");
        raw.close();
        return text;
      };
      expect(await exchange(`GET /${"a".repeat(200)} HTTP/1.1\r\nHost: a\r\n\r\n`)).toMatch(/^HTTP\/1\.1 414 /);
      const many = Array.from({ length: 6 }, (_, i) => `X-${i}: 1\r\n`).join("");
      expect(await exchange(`GET / HTTP/1.1\r\nHost: a\r\n${many}\r\n`)).toMatch(/^HTTP\/1\.1 431 /);
      expect(await exchange(`GET / HTTP/1.1\r\nHost: a\r\nX: ${"b".repeat(400)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431 /);
      const started = Date.now();
      expect(await exchange("GET / HTTP/1.1\r\nHost: a\r\n")).toMatch(/^HTTP\/1\.1 408 /);
      expect(Date.now() - started).toBeLessThan(3000);
      expect(await exchange("GET /fine HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")).toMatch(/^HTTP\/1\.1 200 /);
    },
  },
  {
    name: "graceful stop: in-flight requests finish, new ones are refused",
    needs: ["gracefulStop"],
    async run(sut) {
      let entered!: () => void;
      const inHandler = new Promise<void>((resolve) => {
        entered = resolve;
      });
      const t = await startOn(sut, (app) => {
        app.mapGet("/slow", async () => {
          entered();
          await sleep(300);
          return "finished";
        });
        app.mapGet("/fast", () => "fast");
      });
      // An idle keep-alive connection (wire servers), and one that has sent nothing yet.
      const idle = t.sut.capabilities.has("wire") ? await t.raw() : undefined;
      const silent = t.sut.capabilities.has("wire") ? await t.raw() : undefined;
      if (idle !== undefined) {
        idle.write("GET /fast HTTP/1.1\r\nHost: a\r\n\r\n");
        await idle.waitFor((b) => b.toString("latin1").endsWith("fast"));
      }
      const pending = t.fetch("/slow");
      await within(inHandler, 5000, "the handler did not run");
      const stopping = t.app.stop();
      const res = await within(pending, 5000, "the in-flight request did not finish");
      expect(res.status).toBe(200);
      expect(await res.text()).toBe("finished");
      await within(stopping, 5000, "stop() did not resolve once the in-flight request finished");
      if (idle !== undefined && silent !== undefined) {
        await idle.waitForClose(1000);
        await silent.waitForClose(1000);
      }
      await expect(within(t.fetch("/slow"), 5000, "a request after stop() hung")).rejects.toThrow();
    },
  },
  {
    name: "graceful stop: an aborted signal ends the grace period, ctx.signal fires",
    needs: ["gracefulStop", "lifetime"],
    async run(sut) {
      let entered!: () => void;
      let fired = false;
      const inHandler = new Promise<void>((resolve) => {
        entered = resolve;
      });
      const t = await startOn(sut, (app) =>
        app.mapGet("/forever", async (ctx) => {
          await ctx.response.write("started;");
          entered();
          await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
          fired = true;
        }),
      );
      const res = await t.fetch("/forever");
      const body = res.text();
      body.catch(() => {});
      await within(inHandler, 5000, "the handler did not run");
      const started = Date.now();
      await within(t.app.stop(AbortSignal.timeout(200)), 5000, "stop() did not end when its signal aborted");
      expect(Date.now() - started).toBeLessThan(3000);
      await expect(within(body, 5000, "the client was not cut off")).rejects.toThrow();
      await within(
        (async () => {
          while (!fired) await sleep(10);
        })(),
        5000,
        "ctx.signal did not fire",
      );
    },
  },
  {
    name: "graceful stop: shutdownTimeout ends the grace period",
    needs: ["gracefulStop", "lifetime"],
    async run(sut) {
      let entered!: () => void;
      const inHandler = new Promise<void>((resolve) => {
        entered = resolve;
      });
      let fired = false;
      const t = await startOn(
        sut,
        (app) =>
          app.mapGet("/forever", async (ctx) => {
            entered();
            await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
            fired = true;
          }),
        { shutdownTimeout: 200 },
      );
      const pending = t.fetch("/forever");
      pending.catch(() => {});
      await within(inHandler, 5000, "the handler did not run");
      const started = Date.now();
      await within(t.app.stop(), 5000, "stop() outlived shutdownTimeout");
      expect(Date.now() - started).toBeLessThan(3000);
      await expect(within(pending, 5000, "the client was not cut off")).rejects.toThrow();
      await within(
        (async () => {
          while (!fired) await sleep(10);
        })(),
        5000,
        "ctx.signal did not fire",
      );
    },
  },
  {
    name: "TLS: https endpoint, ctx.tls, HTTP/1.1 over ALPN",
    needs: ["tls"],
    async run(sut, env) {
      const certs = env.certificates();
      const t = await startOn(
        sut,
        (app) =>
          app.mapGet("/tls", (ctx) => ({
            scheme: ctx.request.scheme,
            isHttps: ctx.request.isHttps,
            protocol: ctx.request.protocol,
            tls:
              ctx.tls === undefined
                ? null
                : { protocol: ctx.tls.protocol, cipherSuite: ctx.tls.cipherSuite, alpn: ctx.tls.alpnProtocol ?? null },
          })),
        { urls: ["https://127.0.0.1:0"], tls: { cert: certs.server.cert, key: certs.server.key } },
      );
      expect(t.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const body = await new Promise<string>((resolve, reject) => {
        https
          .get(`${t.url}/tls`, { ca: certs.ca.cert, ALPNProtocols: ["http/1.1"] } as https.RequestOptions, (res) => {
            let text = "";
            res.setEncoding("utf8");
            res.on("data", (d: string) => {
              text += d;
            });
            res.on("end", () => resolve(text));
          })
          .on("error", reject);
      });
      expect(JSON.parse(body)).toEqual({
        scheme: "https",
        isHttps: true,
        protocol: "HTTP/1.1",
        tls: {
          protocol: expect.stringMatching(/^TLSv1\.[23]$/),
          cipherSuite: expect.stringMatching(/^TLS_/),
          alpn: "http/1.1",
        },
      });
    },
  },
  {
    name: "HTTP/2: h2c (prior knowledge, and by preface), stream id, reset",
    needs: ["http2"],
    async run(sut) {
      const t = await startOn(
        sut,
        (app) => {
          app.mapGet("/h2", (ctx) => ({
            protocol: ctx.request.protocol,
            streamId: ctx.features.get(IStreamIdFeature)?.streamId ?? null,
            host: ctx.request.host,
          }));
          app.mapGet("/reset", (ctx) => {
            ctx.features.get(IHttpResetFeature)?.reset(Http2ErrorCode.ENHANCE_YOUR_CALM);
          });
        },
        { endpoints: [{ url: "http://127.0.0.1:0", protocols: "http2" }] },
      );
      const res = await within(h2Request(t.url, { ":path": "/h2" }), 5000, "no HTTP/2 response");
      expect(res.status).toBe(200);
      const seen = JSON.parse(res.body) as { protocol: string; streamId: number; host: string };
      expect(seen.protocol).toBe("HTTP/2");
      expect(seen.streamId).toBeGreaterThan(0);
      expect(seen.host).toBe(new URL(t.url).host);
      const reset = await within(h2Request(t.url, { ":path": "/reset" }), 5000, "the reset stream did not close");
      expect(reset.resetCode).toBe(Http2ErrorCode.ENHANCE_YOUR_CALM);
      // A default (http1AndHttp2) cleartext endpoint tells h2c from HTTP/1.1 by the preface.
      const mixed = await startOn(sut, (app) => app.mapGet("/p", (ctx) => ctx.request.protocol));
      expect((await within(h2Request(mixed.url, { ":path": "/p" }), 5000, "no h2c on a mixed endpoint")).body).toBe(
        "HTTP/2",
      );
      expect(await (await mixed.fetch("/p")).text()).toBe("HTTP/1.1");
    },
  },
  {
    name: "Upgrade: 101, then the connection echoes; a plain request is not upgradable",
    needs: ["upgrade", "wire"],
    async run(sut) {
      const t = await startOn(sut, (app) =>
        app.mapGet("/echo", async (ctx) => {
          const feature = ctx.features.get(IHttpUpgradeFeature);
          if (feature?.isUpgradableRequest !== true) return `upgradable: ${feature?.isUpgradableRequest}`;
          const stream = await feature.upgrade();
          for await (const chunk of stream) {
            stream.write(chunk);
            if (String(chunk).includes("bye")) break;
          }
          stream.end();
        }),
      );
      expect(await (await t.fetch("/echo")).text()).toBe("upgradable: false");
      const c = await t.raw();
      c.write("GET /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n");
      const head = (await c.waitFor((b) => b.includes("\r\n\r\n"))).toString("latin1");
      expect(head).toMatch(/^HTTP\/1\.1 101 /);
      expect(head).toMatch(/\r\nupgrade: echo\r\n/i);
      c.take();
      c.write("hello");
      expect((await c.waitFor((b) => b.length >= 5)).toString()).toBe("hello");
      c.take();
      c.write("bye");
      expect((await c.waitForClose()).toString()).toBe("bye");
    },
  },
  {
    name: "HTTP/2 over TLS: ALPN h2, trailers",
    needs: ["http2", "tls", "trailers"],
    async run(sut, env) {
      const certs = env.certificates();
      const t = await startOn(
        sut,
        (app) =>
          app.mapPost("/h2", async (ctx) => {
            const body = await ctx.request.text();
            ctx.features.get(IHttpResponseTrailersFeature)?.trailers.set("x-done", "yes");
            await ctx.response.write(`${ctx.request.protocol} ${ctx.tls?.alpnProtocol} ${body}`);
          }),
        { urls: ["https://127.0.0.1:0"], tls: { cert: certs.server.cert, key: certs.server.key } },
      );
      const res = await within(
        h2Request(t.url, { ":path": "/h2", ":method": "POST" }, { ca: certs.ca.cert }, "payload"),
        5000,
        "no h2 response",
      );
      expect(res.alpn).toBe("h2");
      expect(res.body).toBe("HTTP/2 h2 payload");
      expect(res.trailers["x-done"]).toBe("yes");
    },
  },
];
