// What is particular to the in-memory TestServer, beyond the conformance cases it
// shares with the other servers: fetch's inputs, backpressure into a ReadableStream,
// and its lifecycle errors.
import { IHttpResponseTrailersFeature, silentLogger, TestServer, WebApplication } from "peregrine";
import { describe, expect, it } from "vitest";

async function started(configure: (app: WebApplication) => void, server = new TestServer({ logger: silentLogger })) {
  const app = WebApplication.create({ server, logger: silentLogger });
  configure(app);
  await app.start();
  return { app, server };
}

describe("TestServer", () => {
  it("serves the example from the issue", async () => {
    const { app, server } = await started((a) => a.mapGet("/", () => "hi"));
    const res = await server.fetch("/", { method: "GET" });
    expect(res).toBeInstanceOf(Response);
    expect([res.status, res.headers.get("content-type"), await res.text()]).toEqual([
      200,
      "text/plain; charset=utf-8",
      "hi",
    ]);
    expect(app.urls).toEqual(["http://localhost"]);
    expect(res.url).toBe("http://localhost/");
    await app.stop();
  });

  it("takes URLs, Request objects and a base address", async () => {
    const server = new TestServer({ baseAddress: "https://api.example.test/v1/", logger: silentLogger });
    const { app } = await started(
      (a) =>
        a.map("*", "/{*path}", (ctx) => ({
          scheme: ctx.request.scheme,
          host: ctx.request.host,
          path: ctx.request.path,
          method: ctx.request.method,
        })),
      server,
    );
    expect(await (await server.fetch("items?x=1")).json()).toEqual({
      scheme: "https",
      host: "api.example.test",
      path: "/v1/items",
      method: "GET",
    });
    expect(await (await server.fetch(new URL("https://other.test/abs"))).json()).toMatchObject({
      host: "other.test",
      path: "/abs",
    });
    const request = new Request("https://api.example.test/req", { method: "PUT", body: "b" });
    expect(await (await server.fetch(request)).json()).toMatchObject({ path: "/req", method: "PUT" });
    await app.stop();
  });

  it("fills Content-Length and Content-Type for known bodies, none for streams", async () => {
    const { app, server } = await started((a) =>
      a.mapPost("/", (ctx) => ({
        length: ctx.request.headers.get("content-length") ?? null,
        type: ctx.request.contentType ?? null,
      })),
    );
    expect(await (await server.fetch("/", { method: "POST", body: "héllo" })).json()).toEqual({
      length: "6",
      type: "text/plain;charset=UTF-8",
    });
    expect(await (await server.fetch("/", { method: "POST", body: new URLSearchParams({ a: "1" }) })).json()).toEqual({
      length: "3",
      type: "application/x-www-form-urlencoded;charset=UTF-8",
    });
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new Uint8Array([1, 2]));
        c.close();
      },
    });
    expect(
      await (await server.fetch("/", { method: "POST", body: stream, duplex: "half" } as RequestInit)).json(),
    ).toEqual({ length: null, type: null });
    await app.stop();
  });

  it("holds writes while the response stream is full, until the test reads", async () => {
    let written = 0;
    const { app, server } = await started(
      (a) =>
        a.mapGet("/", async (ctx) => {
          for (let i = 0; i < 64; i++) {
            await ctx.response.write(new Uint8Array(16 * 1024));
            written++;
          }
        }),
      new TestServer({ logger: silentLogger, limits: { maxResponseBufferSize: 64 * 1024 } }),
    );
    const res = await server.fetch("/");
    await new Promise((r) => setTimeout(r, 50));
    expect(written).toBeLessThanOrEqual(5);
    expect((await res.arrayBuffer()).byteLength).toBe(64 * 16 * 1024);
    expect(written).toBe(64);
    await app.stop();
  });

  it("gives null bodies to HEAD, 204 and 304, and keeps statuses fetch cannot construct", async () => {
    const { app, server } = await started((a) => {
      a.map(["GET", "HEAD"], "/", () => "body");
      a.mapGet("/status/{code}", (ctx) => {
        ctx.response.statusCode = Number(ctx.request.routeValues.code);
      });
    });
    const head = await server.fetch("/", { method: "HEAD" });
    expect([head.body, head.headers.get("content-length")]).toEqual([null, "4"]);
    expect((await server.fetch("/status/204")).body).toBeNull();
    expect((await server.fetch("/status/304")).body).toBeNull();
    const odd = await server.fetch("/status/600");
    expect([odd.status, odd.ok]).toEqual([600, false]);
    await app.stop();
  });

  it("rejects fetch with the client's abort reason, and fires ctx.signal", async () => {
    let fired = false;
    const { app, server } = await started((a) =>
      a.mapGet("/", async (ctx) => {
        await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve()));
        fired = true;
      }),
    );
    const controller = new AbortController();
    const pending = server.fetch("/", { signal: controller.signal });
    await new Promise((r) => setTimeout(r, 10));
    controller.abort(new Error("gave up"));
    await expect(pending).rejects.toThrow("gave up");
    await new Promise((r) => setTimeout(r, 10));
    expect(fired).toBe(true);
    await expect(server.fetch("/", { signal: AbortSignal.abort() })).rejects.toThrow();
    await app.stop();
  });

  it("treats a cancelled response body as the client going away", async () => {
    let fired = false;
    const { app, server } = await started((a) =>
      a.mapGet("/", async (ctx) => {
        ctx.signal.addEventListener("abort", () => {
          fired = true;
        });
        for (;;) {
          await ctx.response.write("tick");
          if (ctx.signal.aborted) return;
        }
      }),
    );
    const res = await server.fetch("/");
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    await reader.cancel();
    await new Promise((r) => setTimeout(r, 10));
    expect(fired).toBe(true);
    await app.stop();
  });

  it("runs onCompleted, and offers no response trailers (fetch has none)", async () => {
    let completed = false;
    let trailers: unknown = "unset";
    const { app, server } = await started((a) =>
      a.mapGet("/", (ctx) => {
        trailers = ctx.features.get(IHttpResponseTrailersFeature);
        ctx.response.onCompleted(() => {
          completed = true;
        });
        return "x";
      }),
    );
    await (await server.fetch("/")).text();
    await new Promise((r) => setTimeout(r, 10));
    expect(completed).toBe(true);
    expect(trailers).toBeUndefined();
    await app.stop();
  });

  it("fails fetch before start and after stop with stable codes", async () => {
    const server = new TestServer({ logger: silentLogger });
    await expect(server.fetch("/")).rejects.toMatchObject({ code: "PEREGRINE_SERVER_NOT_STARTED" });
    const app = WebApplication.create({ server, logger: silentLogger });
    await app.start();
    await app.stop();
    await expect(server.fetch("/")).rejects.toMatchObject({ code: "PEREGRINE_SERVER_STOPPED" });
    expect(() => new TestServer({ baseAddress: "not a url" })).toThrow(
      expect.objectContaining({ code: "PEREGRINE_INVALID_OPTION" }),
    );
  });
});
