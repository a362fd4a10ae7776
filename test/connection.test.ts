import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import type { WebApplication } from "peregrine";
import { afterEach, describe, expect, it } from "vitest";
import { RawClient, startApp } from "./support/server.js";

const apps: WebApplication[] = [];
const clients: RawClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(apps.splice(0).map((a) => a.stop()));
});

async function serve(configure: (app: WebApplication) => void) {
  const started = await startApp(configure);
  apps.push(started.app);
  return started;
}

async function connect(port: number): Promise<RawClient> {
  const client = await RawClient.connect(port);
  clients.push(client);
  return client;
}

function responses(received: Buffer): number {
  return RawClient.countResponses(received);
}

describe("HTTP/1.1 connections", () => {
  it("reuses a keep-alive connection for sequential requests", async () => {
    const { port } = await serve((app) => app.mapGet("/conn", (ctx) => ctx.connection.id));
    const client = await connect(port);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      client.write("GET /conn HTTP/1.1\r\nHost: x\r\n\r\n");
      const text = (await client.waitFor((r) => /\r\n\r\n[0-9A-Z]{8}$/.test(r.toString()))).toString();
      ids.push(text.slice(-8));
      client.take();
    }
    expect(client.closed).toBe(false);
    expect(new Set(ids).size).toBe(1);
  });

  it("answers 16 pipelined requests in order", async () => {
    const { port } = await serve((app) => {
      app.mapGet("/n/{n}", async (ctx) => {
        const n = Number(ctx.request.routeValues.n);
        // Later requests finish first: the order must come from the connection, not timing.
        await new Promise((r) => setTimeout(r, (16 - n) * 2));
        return `r${n}`;
      });
    });
    const client = await connect(port);
    let batch = "";
    for (let i = 0; i < 16; i++) batch += `GET /n/${i} HTTP/1.1\r\nHost: x\r\n\r\n`;
    client.write(batch);
    const received = await client.waitFor((r) => responses(r) === 16 && r.toString().endsWith("r15"));
    const bodies = received.toString().match(/r\d+(?=HTTP|$)/g);
    expect(bodies).toEqual(Array.from({ length: 16 }, (_, i) => `r${i}`));
  });

  it("runs pipelined requests together, as node:http does, and stops at Connection: close", async () => {
    const started: string[] = [];
    let arrived = () => {};
    const allArrived = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const { port } = await serve((app) => {
      app.mapGet("/first", () => "first");
      app.mapGet("/gate/{n}", async (ctx) => {
        started.push(ctx.request.routeValues.n as string);
        if (started.length === 8) arrived();
        // Served one at a time, the first would wait out the timeout.
        const late = await Promise.race([
          allArrived.then(() => false),
          new Promise<boolean>((r) => setTimeout(() => r(true), 2000)),
        ]);
        return late ? "late" : `g${ctx.request.routeValues.n}`;
      });
    });
    const client = await connect(port);
    // One exchange first: a connection's first bytes may be read apart while the
    // server tells HTTP/1.1 from HTTP/2, and the batch below must arrive in one read.
    client.write("GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
    await client.waitFor((r) => r.toString().endsWith("first"));
    client.take();
    let batch = "";
    for (let i = 0; i < 8; i++) {
      const close = i === 7 ? "Connection: close\r\n" : "";
      batch += `GET /gate/${i} HTTP/1.1\r\nHost: x\r\n${close}\r\n`;
    }
    // Behind the request that closes the connection: never served.
    batch += "GET /gate/8 HTTP/1.1\r\nHost: x\r\n\r\n";
    client.write(batch);
    const received = await client.waitFor((r) => responses(r) === 8 && r.toString().endsWith("g7"));
    const bodies = received.toString().match(/(g\d+|late)(?=HTTP|$)/g);
    expect(bodies).toEqual(Array.from({ length: 8 }, (_, i) => `g${i}`));
    expect(started).toEqual(["0", "1", "2", "3", "4", "5", "6", "7"]);
  });

  it("answers a throwing handler with 500 and keeps the connection usable", async () => {
    const { port } = await serve((app) => {
      app.mapGet("/throw", () => {
        throw new Error("boom");
      });
      app.mapGet("/async-throw", async () => {
        await new Promise((r) => setTimeout(r, 1));
        throw new Error("async boom");
      });
      app.mapGet("/ok", () => "fine");
    });
    const client = await connect(port);
    for (const path of ["/throw", "/async-throw"]) {
      client.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      const text = (await client.waitFor((r) => r.includes("\r\n\r\n"))).toString();
      expect(text).toMatch(/^HTTP\/1\.1 500 /);
      expect(text).toMatch(/content-length: 0/i);
      client.take();
    }
    client.write("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
    expect((await client.waitFor((r) => r.toString().endsWith("fine"))).toString()).toMatch(/^HTTP\/1\.1 200 /);
  });

  it("aborts a response that fails after it started", async () => {
    const { port } = await serve((app) => {
      app.mapGet("/midway", async (ctx) => {
        await ctx.response.write("partial");
        throw new Error("after start");
      });
    });
    const client = await connect(port);
    client.write("GET /midway HTTP/1.1\r\nHost: x\r\n\r\n");
    const text = (await client.waitForClose()).toString();
    // The connection closes with the response cut short: either before anything was
    // flushed, or after the head, but never with chunked framing's terminating chunk.
    expect(text === "" || text.startsWith("HTTP/1.1 200 ")).toBe(true);
    expect(text).not.toMatch(/\r\n0\r\n\r\n$/);
  });

  it("fires ctx.signal when the client aborts mid-body", async () => {
    let aborted!: (reason: unknown) => void;
    const signalled = new Promise<unknown>((resolve) => {
      aborted = resolve;
    });
    let readError: unknown;
    const { port } = await serve((app) => {
      app.mapPost("/upload", async (ctx) => {
        // On a loaded machine the client may be gone before the handler runs.
        if (ctx.signal.aborted) aborted(ctx.signal.reason);
        else ctx.signal.addEventListener("abort", () => aborted(ctx.signal.reason));
        try {
          for await (const _ of ctx.request.body) {
            // keep reading until the client goes away
          }
        } catch (error) {
          readError = error;
        }
        return "never sent";
      });
    });
    const client = await connect(port);
    client.write("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
    client.write(Buffer.alloc(1000, 97));
    await new Promise((r) => setTimeout(r, 100));
    client.close();
    const reason = await signalled;
    expect((reason as { code?: string }).code).toBe("PEREGRINE_REQUEST_ABORTED");
    await new Promise((r) => setTimeout(r, 50));
    expect(readError).toBeDefined();
  });

  it("fires ctx.signal and fails the body read for every client that aborts mid-body, however quickly", async () => {
    // The core can end an exchange a moment before the app hears of it; an app that
    // answered in that moment once ended the exchange first, and its signal never fired.
    type Outcome = { reason?: unknown; readError?: unknown };
    let current: { outcome: Outcome; settled: () => void } | undefined;
    const { port } = await serve((app) => {
      app.mapPost("/upload", async (ctx) => {
        const watch = current as NonNullable<typeof current>;
        const signalled = new Promise<void>((resolve) => {
          if (ctx.signal.aborted) resolve();
          else ctx.signal.addEventListener("abort", () => resolve());
        }).then(() => {
          watch.outcome.reason = ctx.signal.reason;
        });
        try {
          for await (const _ of ctx.request.body) {
            // keep reading until the client goes away
          }
        } catch (error) {
          watch.outcome.readError = error;
        }
        void signalled.then(watch.settled);
        return "never sent";
      });
    });
    const missed: string[] = [];
    for (let i = 0; i < 200; i++) {
      const outcome: Outcome = {};
      const settled = new Promise<void>((resolve) => {
        current = { outcome, settled: resolve };
      });
      const client = await RawClient.connect(port);
      client.write("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
      client.write(Buffer.alloc(1000, 97));
      if (i % 2 === 1) await new Promise((r) => setTimeout(r, i % 5));
      client.close();
      const done = await Promise.race([
        settled.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 2000)),
      ]);
      if (!done || outcome.readError === undefined) missed.push(`#${i}: ${JSON.stringify(outcome)}`);
      else expect((outcome.reason as { code?: string }).code).toBe("PEREGRINE_REQUEST_ABORTED");
    }
    expect(missed).toEqual([]);
  });

  it("sends 100 Continue once the handler reads the body", async () => {
    const { port } = await serve((app) => app.mapPost("/echo", (ctx) => ctx.request.body));
    const client = await connect(port);
    client.write("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    await client.waitFor((r) => r.toString().startsWith("HTTP/1.1 100 Continue\r\n\r\n"));
    client.write("hello");
    const text = (await client.waitFor((r) => r.toString().includes("hello"))).toString();
    expect(text).toMatch(/HTTP\/1\.1 200 OK/);
  });

  it("streams chunked request bodies and chunked responses", async () => {
    const { port } = await serve((app) => app.mapPost("/echo", (ctx) => ctx.request.body));
    const client = await connect(port);
    client.write(
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    );
    const text = (await client.waitFor((r) => r.toString().endsWith("0\r\n\r\n"))).toString();
    expect(text).toMatch(/transfer-encoding: chunked/i);
    const body = text.slice(text.indexOf("\r\n\r\n") + 4);
    const decoded = body
      .split("\r\n")
      .filter((_, i) => i % 2 === 1)
      .join("");
    expect(decoded).toBe("hello world");
  });

  it("relays an unread request body returned as the response, freeing each chunk as it goes", async () => {
    const { url } = await serve((app) => {
      app.mapPost("/echo", (ctx) => ctx.request.body);
    });
    // The client runs in a process of its own, so that only the server's memory counts
    // here. It sends 24 MiB and prints the SHA-256 of what it sent and of what came back.
    const client = `
      const { createHash } = await import("node:crypto");
      const payload = Buffer.alloc(24 * 1024 * 1024);
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + (i >> 13)) & 0xff;
      const res = await fetch(process.argv[1], { method: "POST", body: payload });
      const echoed = Buffer.from(await res.arrayBuffer());
      const hash = (b) => createHash("sha256").update(b).digest("hex");
      console.log(JSON.stringify({ status: res.status, sent: hash(payload), echoed: hash(echoed), length: echoed.length }));
    `;
    // V8 counts each chunk's memory until the chunk is given back or collected: a
    // relay that kept its chunks would hold most of the 24 MiB (V8 starts a major
    // collection for such memory only at 64 MiB).
    const before = process.memoryUsage().external;
    let peak = before;
    const watch = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().external);
    }, 2);
    const output = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ["--input-type=module", "-e", client, `${url}/echo`], (error, stdout) =>
        error ? reject(error) : resolve(stdout),
      );
    });
    clearInterval(watch);
    const result = JSON.parse(output) as { status: number; sent: string; echoed: string; length: number };
    expect(result.status).toBe(200);
    expect(result.length).toBe(24 * 1024 * 1024);
    expect(result.echoed).toBe(result.sent);
    expect(peak - before).toBeLessThan(8 * 1024 * 1024);
  });

  it("relays a request body in JS when the response has onStarting callbacks to run first", async () => {
    const { url } = await serve((app) => {
      app.mapPost("/echo", (ctx) => {
        ctx.response.onStarting(async () => {
          await new Promise((r) => setTimeout(r, 5));
          ctx.response.headers.set("x-started", "yes");
        });
        return ctx.request.body;
      });
    });
    const payload = randomBytes(3 * 1024 * 1024);
    const res = await fetch(`${url}/echo`, { method: "POST", body: payload });
    expect(res.headers.get("x-started")).toBe("yes");
    expect(Buffer.from(await res.arrayBuffer()).equals(payload)).toBe(true);
  });

  it("answers a relayed body over the size limit as a failed read: 413", async () => {
    const started = await startApp((app) => app.mapPost("/echo", (ctx) => ctx.request.body), {
      limits: { maxRequestBodySize: 8 },
    });
    apps.push(started.app);
    const client = await connect(started.port);
    client.write("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789");
    const text = (await client.waitFor((r) => r.toString().includes("\r\n\r\n"))).toString();
    expect(text).toMatch(/^HTTP\/1\.1 413 /);
  });

  it("runs onCompleted once a request body is relayed", async () => {
    let completed = 0;
    const { url } = await serve((app) => {
      app.mapPost("/echo", (ctx) => {
        ctx.response.onCompleted(() => {
          completed++;
        });
        ctx.response.headers.set("content-type", "text/plain");
        return ctx.request.body;
      });
    });
    const res = await fetch(`${url}/echo`, { method: "POST", body: "relayed" });
    expect(res.headers.get("content-type")).toBe("text/plain");
    expect(await res.text()).toBe("relayed");
    await expect.poll(() => completed).toBe(1);
  });

  it("leaves request body chunks the app keeps untouched when it streams them back", async () => {
    const kept: Buffer[] = [];
    const { url } = await serve((app) => {
      app.mapPost("/echo", async function* (ctx) {
        for await (const chunk of ctx.request.body) {
          kept.push(chunk as Buffer);
          yield chunk;
        }
      });
    });
    const payload = randomBytes(4 * 1024 * 1024);
    const res = await fetch(`${url}/echo`, { method: "POST", body: payload });
    expect(Buffer.from(await res.arrayBuffer()).equals(payload)).toBe(true);
    expect(Buffer.concat(kept).equals(payload)).toBe(true);
  });

  it("serves HTTP/1.0 clients and closes after the response", async () => {
    const { port } = await serve((app) => app.mapGet("/", () => "old"));
    const client = await connect(port);
    client.write("GET / HTTP/1.0\r\n\r\n");
    const text = (await client.waitForClose()).toString();
    expect(text).toMatch(/^HTTP\/1\.0 200 OK/);
    expect(text.endsWith("old")).toBe(true);
  });
});
