import http from "node:http";
import net from "node:net";
import { type NativeServer, silentLogger, WebApplication } from "peregrine";
import { afterEach, describe, expect, it } from "vitest";
import { capturingLogger } from "./support/logger.js";
import { RawClient, startApp } from "./support/server.js";

const apps: WebApplication[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.stop()));
});

async function exchange(port: number, raw: string): Promise<string> {
  const client = await RawClient.connect(port);
  client.write(raw);
  return (await client.waitForClose()).toString("latin1");
}

describe("edge safety", () => {
  it("logs each refusal once with its reason code, connection and address, and counts it", async () => {
    const logger = capturingLogger();
    const { app, port } = await startApp((a) => a.mapGet("/", () => "ok"), { logger });
    apps.push(app);
    const text = await exchange(
      port,
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    expect(text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    await new Promise((r) => setTimeout(r, 50));
    const rejections = logger.events.filter((e) => e.message === "Request rejected");
    expect(rejections).toHaveLength(1);
    expect(rejections[0]?.fields).toMatchObject({
      reason: "BAD_REQUEST_TE_CL",
      status: 400,
      remoteAddress: "127.0.0.1",
    });
    expect(rejections[0]?.fields.connectionId).toMatch(/^[0-9A-Z]{8}$/);
    const stats = (app.server as NativeServer).stats;
    expect(stats.rejections).toEqual({ BAD_REQUEST_TE_CL: 1 });
    expect(stats.totalConnections).toBeGreaterThanOrEqual(1);
  });

  it("applies the limits given as options", async () => {
    const { app, port } = await startApp((a) => a.mapGet("/{*rest}", () => "ok"), {
      limits: { maxRequestLineSize: 100, maxRequestHeaderCount: 5, maxRequestHeadersTotalSize: 200 },
    });
    apps.push(app);
    expect(await exchange(port, `GET /${"a".repeat(200)} HTTP/1.1\r\nHost: a\r\n\r\n`)).toMatch(/^HTTP\/1\.1 414 /);
    const many = Array.from({ length: 6 }, (_, i) => `X-${i}: 1\r\n`).join("");
    expect(await exchange(port, `GET / HTTP/1.1\r\nHost: a\r\n${many}\r\n`)).toMatch(/^HTTP\/1\.1 431 /);
    expect(await exchange(port, `GET / HTTP/1.1\r\nHost: a\r\nX: ${"b".repeat(300)}\r\n\r\n`)).toMatch(
      /^HTTP\/1\.1 431 /,
    );
    const ok = await exchange(port, "GET /fine HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    expect(ok).toMatch(/^HTTP\/1\.1 200 /);
  });

  it("closes connections over maxConcurrentConnections at accept", async () => {
    const logger = capturingLogger();
    const { app, port } = await startApp((a) => a.mapGet("/", () => "ok"), {
      logger,
      limits: { maxConcurrentConnections: 2 },
    });
    apps.push(app);
    const held = [await RawClient.connect(port), await RawClient.connect(port)];
    for (const c of held) c.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    await Promise.all(held.map((c) => c.waitFor((r) => r.toString().endsWith("ok"))));
    const third = await RawClient.connect(port);
    third.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    expect((await third.waitForClose()).length).toBe(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(logger.events.some((e) => e.fields.reason === "MAX_CONCURRENT_CONNECTIONS")).toBe(true);
    for (const c of held) c.close();
  });

  it("parks idle keep-alive connections (stats.idleConnections) and serves their next requests", async () => {
    const { app, port } = await startApp((a) => a.mapGet("/{n}", (ctx) => `ok ${ctx.request.routeValues.n}`));
    apps.push(app);
    const server = app.server as NativeServer;
    const clients = await Promise.all([1, 2, 3].map(() => RawClient.connect(port)));
    for (const c of clients) c.write("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n");
    await Promise.all(clients.map((c) => c.waitFor((r) => r.toString().endsWith("ok 1"))));
    await new Promise((r) => setTimeout(r, 250));
    expect(server.stats).toMatchObject({ currentConnections: 3, idleConnections: 3 });
    // A parked connection serves its next requests, pipelined ones in order.
    const first = clients[0] as RawClient;
    first.write("GET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n");
    const text = (await first.waitFor((r) => r.toString().endsWith("ok 3"))).toString();
    expect(text.indexOf("ok 2")).toBeGreaterThan(0);
    expect(text.indexOf("ok 2")).toBeLessThan(text.indexOf("ok 3"));
    for (const c of clients) c.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(server.stats).toMatchObject({ currentConnections: 0, idleConnections: 0 });
  });

  it("answers 408 to a body sent below minRequestBodyDataRate", async () => {
    const { app, port } = await startApp(
      (a) => a.mapPost("/upload", async (ctx) => (await ctx.request.bytes()).length),
      {
        limits: { minRequestBodyDataRate: { bytesPerSecond: 240, gracePeriod: 300 } },
      },
    );
    apps.push(app);
    const client = await RawClient.connect(port);
    client.write("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n");
    const trickle = setInterval(() => client.write("x"), 100);
    try {
      const text = (await client.waitFor((r) => r.includes("\r\n\r\n"))).toString();
      expect(text).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      clearInterval(trickle);
      client.close();
    }
  });

  it("aborts a client that stops reading, below minResponseDataRate", async () => {
    const logger = capturingLogger();
    const { app, port } = await startApp(
      (a) =>
        a.mapGet("/firehose", async function* () {
          const chunk = Buffer.alloc(64 * 1024, 120);
          for (let i = 0; i < 10_000; i++) yield chunk;
        }),
      { logger, limits: { minResponseDataRate: { bytesPerSecond: 240, gracePeriod: 300 } } },
    );
    apps.push(app);
    const socket = net.connect(port, "127.0.0.1");
    socket.on("error", () => {});
    socket.pause(); // never read: the window closes and the server's writes block
    socket.write("GET /firehose HTTP/1.1\r\nHost: a\r\n\r\n");
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    await new Promise((r) => setTimeout(r, 1500));
    socket.resume(); // drain what the kernel buffered; the server must have closed
    await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error("still open")), 5000))]);
    expect((app.server as NativeServer).stats.rejections.MIN_RESPONSE_DATA_RATE).toBe(1);
    expect(logger.events.some((e) => e.fields.reason === "MIN_RESPONSE_DATA_RATE")).toBe(true);
  });

  it("cuts off 500 slowloris connections while serving a normal client at its usual latency", async () => {
    const { app, port, url } = await startApp((a) => a.mapGet("/", () => "ok"), {
      limits: { requestHeadersTimeout: 1500 },
    });
    apps.push(app);
    const time = async () => {
      const started = performance.now();
      await (await fetch(url)).text();
      return performance.now() - started;
    };
    await time();
    const baseline = Math.min(await time(), await time(), await time());
    const sockets: net.Socket[] = [];
    const closed: Promise<string>[] = [];
    for (let i = 0; i < 500; i++) {
      const socket = net.connect(port, "127.0.0.1");
      socket.on("error", () => {});
      sockets.push(socket);
      closed.push(
        new Promise((resolve) => {
          let received = "";
          socket.on("data", (d: Buffer) => {
            received += d.toString("latin1");
          });
          socket.on("close", () => resolve(received));
        }),
      );
      socket.write("GET / HTTP/1.1\r\nHost: a\r\n");
    }
    // Trickle one header byte per connection every 200 ms: never a complete head.
    const trickle = setInterval(() => {
      for (const s of sockets) if (!s.destroyed) s.write("X");
    }, 200);
    try {
      const latencies: number[] = [];
      for (let i = 0; i < 5; i++) latencies.push(await time());
      latencies.sort((a, b) => a - b);
      const median = latencies[2] as number;
      // Served as usual: within a generous bound of the unloaded latency.
      expect(median).toBeLessThan(Math.max(50, baseline * 10));
      const outcomes = await Promise.all(closed);
      expect(outcomes.every((o) => o.startsWith("HTTP/1.1 408 Request Timeout"))).toBe(true);
    } finally {
      clearInterval(trickle);
      for (const s of sockets) s.destroy();
    }
    expect((app.server as NativeServer).stats.rejections.REQUEST_HEADERS_TIMEOUT).toBe(500);
  });

  it("stops with 1000 requests in flight: each completes or was never accepted", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { app, port } = await startApp((a) =>
      a.mapGet("/slow", async () => {
        await gate;
        return "done";
      }),
    );
    const agent = new http.Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
    type Outcome =
      | { kind: "complete"; status: number; body: string; connection: string | undefined }
      | { kind: "refused" };
    const requests: Promise<Outcome>[] = [];
    for (let i = 0; i < 1000; i++) {
      requests.push(
        new Promise((resolve) => {
          const req = http.get({ host: "127.0.0.1", port, path: "/slow", agent }, (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (d: string) => {
              body += d;
            });
            res.on("end", () =>
              resolve({ kind: "complete", status: res.statusCode ?? 0, body, connection: res.headers.connection }),
            );
            res.on("error", () => resolve({ kind: "complete", status: -1, body, connection: undefined }));
          });
          req.on("error", () => resolve({ kind: "refused" }));
        }),
      );
    }
    const server = app.server as NativeServer;
    const deadline = Date.now() + 20_000;
    while (server.inFlight < 1000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(server.inFlight).toBe(1000);
    const stopping = app.stop();
    // Requests that arrive once stopping began are never accepted.
    await new Promise((r) => setTimeout(r, 50));
    const late = Array.from(
      { length: 20 },
      () =>
        new Promise<string>((resolve) => {
          const req = http.get({ host: "127.0.0.1", port, path: "/slow", agent }, (res) => {
            res.resume();
            res.on("end", () => resolve(`answered ${res.statusCode}`));
          });
          req.on("error", () => resolve("refused"));
        }),
    );
    setTimeout(release, 200);
    const outcomes = await Promise.all(requests);
    expect(await Promise.all(late)).toEqual(Array(20).fill("refused"));
    await stopping;
    agent.destroy();
    const complete = outcomes.filter((o) => o.kind === "complete");
    // None is half-answered: a response that started is a whole 200 with its body.
    for (const o of complete) {
      expect(o).toMatchObject({ status: 200, body: "done" });
    }
    expect(complete.length).toBe(1000);
    // HTTP/1.1 responses during shutdown tell the client the connection will close.
    expect(complete.every((o) => o.kind === "complete" && o.connection === "close")).toBe(true);
  });
});

describe("endpoint URLs", () => {
  it("IPv6 zone IDs are refused by name on the native and the node server alike", async () => {
    for (const server of ["native", "node"] as const) {
      for (const url of ["http://[fe80::1%eth0]:0", "http://[fe80::1%25lo]:0"]) {
        const app = WebApplication.create({ urls: [url], server, logger: silentLogger });
        await expect(app.start(), `${server} ${url}`).rejects.toMatchObject({
          code: "PEREGRINE_INVALID_URL",
          message: expect.stringMatching(/zone IDs .* are not supported/),
        });
      }
    }
  });
});
