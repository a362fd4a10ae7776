import type { WebApplication } from "peregrine";
import { afterEach, describe, expect, it } from "vitest";
import { startApp } from "./support/server.js";

const apps: WebApplication[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.stop()));
});

async function serve(configure: (app: WebApplication) => void) {
  const started = await startApp(configure);
  apps.push(started.app);
  return started;
}

describe("middleware and routing", () => {
  it("runs middleware in order around the endpoint and lets it set headers after next()", async () => {
    const order: string[] = [];
    const { url } = await serve((app) => {
      app.use(async (ctx, next) => {
        order.push("a-in");
        await next();
        order.push("a-out");
        ctx.response.headers.set("x-handled", "1");
      });
      app.use(async (_ctx, next) => {
        order.push("b-in");
        await next();
        order.push("b-out");
      });
      app.mapGet("/", () => {
        order.push("endpoint");
        return "Hello, World!";
      });
    });
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-handled")).toBe("1");
    expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(await res.text()).toBe("Hello, World!");
    expect(order).toEqual(["a-in", "b-in", "endpoint", "b-out", "a-out"]);
  });

  it("sends each response its own headers while the response batches index them, fill the table and start over", async () => {
    const long = "v".repeat(200);
    // Values go out as UTF-8; fetch reads header bytes as Latin-1.
    const utf8 = Buffer.from("é", "utf8").toString("latin1");
    const { url } = await serve((app) => {
      app.mapGet("/h/{n:int}", (ctx) => {
        const n = Number(ctx.request.routeValues.n);
        const headers = ctx.response.headers;
        // 1,500 groups, each seen twice or more: more indexed fields than the table holds.
        headers.set("x-group", `g${n % 1500}`);
        headers.set("x-n", String(n));
        headers.set("x-long", long);
        headers.append("x-many", "é");
        headers.append("x-many", n % 2 === 0 ? "even" : "odd");
        return `${n}`;
      });
    });
    const total = 4500;
    const next = { n: 0 };
    const failures: string[] = [];
    async function client() {
      for (let n = next.n++; n < total; n = next.n++) {
        const res = await fetch(`${url}/h/${n}`);
        const got = [
          res.headers.get("content-type"),
          res.headers.get("x-group"),
          res.headers.get("x-n"),
          res.headers.get("x-long"),
          res.headers.get("x-many"),
          await res.text(),
        ];
        const want = [
          "text/plain; charset=utf-8",
          `g${n % 1500}`,
          String(n),
          long,
          `${utf8}, ${n % 2 === 0 ? "even" : "odd"}`,
          `${n}`,
        ];
        if (JSON.stringify(got) !== JSON.stringify(want)) failures.push(`${n}: ${JSON.stringify(got)}`);
      }
    }
    await Promise.all(Array.from({ length: 16 }, client));
    expect(failures.slice(0, 5)).toEqual([]);
  });

  it("captures route values, with constraints, optionals and catch-alls", async () => {
    const { url } = await serve((app) => {
      app.mapGet("/users/{id}", (ctx) => ctx.request.routeValues.id);
      app.mapGet("/items/{id:int}", (ctx) => `int:${ctx.request.routeValues.id}`);
      app.mapGet("/items/{name}", (ctx) => `name:${ctx.request.routeValues.name}`);
      app.mapGet("/files/{*path}", (ctx) => `path:${ctx.request.routeValues.path}`);
      app.mapGet("/opt/{x?}", (ctx) => `x:${ctx.request.routeValues.x ?? "none"}`);
    });
    const get = async (p: string) => (await fetch(url + p)).text();
    expect(await get("/users/42")).toBe("42");
    expect(await get("/USERS/abc")).toBe("abc");
    expect(await get("/users/a%20b")).toBe("a b");
    expect(await get("/items/7")).toBe("int:7");
    expect(await get("/items/seven")).toBe("name:seven");
    expect(await get("/files/a/b/c.txt")).toBe("path:a/b/c.txt");
    expect(await get("/opt")).toBe("x:none");
    expect(await get("/opt/1")).toBe("x:1");
  });

  it("answers 404 for unknown paths and 405 with Allow for known paths", async () => {
    const { url } = await serve((app) => {
      app.mapGet("/", () => "hi");
      app.mapPut("/", () => "put");
    });
    expect((await fetch(`${url}/missing`)).status).toBe(404);
    const res = await fetch(url, { method: "DELETE" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, PUT");
  });

  it("maps several methods, any method, and sub-pipelines with pathBase", async () => {
    const { url } = await serve((app) => {
      app.map(["GET", "POST"], "/multi", (ctx) => ctx.request.method);
      app.map("*", "/any", (ctx) => ctx.request.method);
      app.map("/api", (api) => {
        api.use(async (ctx, next) => {
          ctx.response.headers.set("x-branch", "api");
          await next();
        });
        api.mapGet("/info/{id}", (ctx) => ({
          pathBase: ctx.request.pathBase,
          path: ctx.request.path,
          id: ctx.request.routeValues.id,
        }));
      });
      app.mapGet("/apiary", () => "not the branch");
    });
    expect(await (await fetch(`${url}/multi`, { method: "POST" })).text()).toBe("POST");
    expect(await (await fetch(`${url}/any`, { method: "PATCH" })).text()).toBe("PATCH");
    const res = await fetch(`${url}/api/info/9`);
    expect(res.headers.get("x-branch")).toBe("api");
    expect(await res.json()).toEqual({ pathBase: "/api", path: "/info/9", id: "9" });
    expect(await (await fetch(`${url}/apiary`)).text()).toBe("not the branch");
    expect((await fetch(`${url}/api/nothing`)).status).toBe(404);
  });

  it("writes each kind of result", async () => {
    const { url } = await serve((app) => {
      app.mapGet("/json", () => ({ message: "Hello, World!" }));
      app.mapGet("/array", () => [1, 2, 3]);
      app.mapGet("/bytes", () => Buffer.from([1, 2, 3]));
      app.mapGet("/stream", async function* () {
        yield "a";
        yield Buffer.from("b");
        yield "c";
      });
      app.mapGet("/async", async () => "later");
      app.mapGet("/manual", async (ctx) => {
        ctx.response.statusCode = 201;
        ctx.response.headers.set("content-type", "text/x-custom");
        await ctx.response.write("part1,");
        await ctx.response.end("part2");
      });
      app.mapGet("/empty", (ctx) => {
        ctx.response.statusCode = 204;
      });
      app.mapGet("/typed", (ctx) => {
        ctx.response.contentType = "application/vnd.test+json";
        return { ok: true };
      });
    });
    const json = await fetch(`${url}/json`);
    expect(json.headers.get("content-type")).toBe("application/json");
    expect(await json.text()).toBe('{"message":"Hello, World!"}');
    expect(await (await fetch(`${url}/array`)).json()).toEqual([1, 2, 3]);
    const bytes = await fetch(`${url}/bytes`);
    expect(bytes.headers.get("content-type")).toBe("application/octet-stream");
    expect([...new Uint8Array(await bytes.arrayBuffer())]).toEqual([1, 2, 3]);
    expect(await (await fetch(`${url}/stream`)).text()).toBe("abc");
    expect(await (await fetch(`${url}/async`)).text()).toBe("later");
    const manual = await fetch(`${url}/manual`);
    expect(manual.status).toBe(201);
    expect(manual.headers.get("content-type")).toBe("text/x-custom");
    expect(await manual.text()).toBe("part1,part2");
    const empty = await fetch(`${url}/empty`);
    expect(empty.status).toBe(204);
    expect(await empty.text()).toBe("");
    expect((await fetch(`${url}/typed`)).headers.get("content-type")).toBe("application/vnd.test+json");
  });

  it("exposes request details, query, headers and connection info", async () => {
    const { url, port } = await serve((app) => {
      app.mapGet("/info", (ctx) => ({
        method: ctx.request.method,
        scheme: ctx.request.scheme,
        host: ctx.request.host,
        path: ctx.request.path,
        queryString: ctx.request.queryString,
        q: ctx.request.query.getAll("q"),
        protocol: ctx.request.protocol,
        custom: ctx.request.headers.get("X-Custom"),
        hasCustom: ctx.request.headers.has("x-custom"),
        remote: ctx.connection.remoteAddress,
        localPort: ctx.connection.localPort,
        connectionId: ctx.connection.id,
        trace: ctx.traceIdentifier,
      }));
    });
    const res = await fetch(`${url}/info?q=1&q=two%20words`, { headers: { "x-custom": "yes" } });
    const info = (await res.json()) as Record<string, unknown>;
    expect(info).toMatchObject({
      method: "GET",
      scheme: "http",
      host: `127.0.0.1:${port}`,
      path: "/info",
      queryString: "?q=1&q=two%20words",
      q: ["1", "two words"],
      protocol: "HTTP/1.1",
      custom: "yes",
      hasCustom: true,
      remote: "127.0.0.1",
      localPort: port,
    });
    expect(info.trace).toMatch(/^[0-9A-Z]+:[0-9A-F]{8}$/);
    expect(res.headers.get("server")).toBe("Peregrine");
    expect(res.headers.get("date")).toMatch(/GMT$/);
  });

  it("reads request bodies as text, json and bytes, and rejects bad JSON with 400", async () => {
    const { url } = await serve((app) => {
      app.mapPost("/text", async (ctx) => `got ${await ctx.request.text()}`);
      app.mapPost("/json", async (ctx) => ({ echo: await ctx.request.json() }));
      app.mapPost("/bytes", async (ctx) => (await ctx.request.bytes()).length);
      app.mapPost("/twice", async (ctx) => {
        await ctx.request.text();
        return ctx.request.text();
      });
    });
    expect(await (await fetch(`${url}/text`, { method: "POST", body: "abc" })).text()).toBe("got abc");
    const json = await fetch(`${url}/json`, { method: "POST", body: JSON.stringify({ a: 1 }) });
    expect(await json.json()).toEqual({ echo: { a: 1 } });
    expect((await fetch(`${url}/json`, { method: "POST", body: "{nope" })).status).toBe(400);
    expect(await (await fetch(`${url}/bytes`, { method: "POST", body: new Uint8Array(1000) })).text()).toBe("1000");
    expect((await fetch(`${url}/twice`, { method: "POST", body: "x" })).status).toBe(500);
  });

  it("forbids header changes after the response started, and runs onStarting and onCompleted", async () => {
    const events: string[] = [];
    let lateError: unknown;
    let completed!: () => void;
    const done = new Promise<void>((resolve) => {
      completed = resolve;
    });
    const { url } = await serve((app) => {
      app.mapGet("/", async (ctx) => {
        ctx.response.onStarting(() => {
          events.push("starting");
          ctx.response.headers.set("x-starting", "yes");
        });
        ctx.response.onCompleted(() => {
          events.push("completed");
          completed();
        });
        await ctx.response.write("a");
        try {
          ctx.response.headers.set("x-late", "1");
        } catch (error) {
          lateError = error;
        }
        await ctx.response.end("b");
      });
    });
    const res = await fetch(url);
    expect(res.headers.get("x-starting")).toBe("yes");
    expect(await res.text()).toBe("ab");
    await done;
    expect(events).toEqual(["starting", "completed"]);
    expect((lateError as { code?: string }).code).toBe("PEREGRINE_RESPONSE_STARTED");
  });

  it("sends the head once onStarting callbacks finish, however often the response is started meanwhile", async () => {
    const { url } = await serve((app) => {
      app.mapGet("/", async (ctx) => {
        ctx.response.onStarting(async () => {
          await new Promise((resolve) => setTimeout(resolve, 20));
          ctx.response.headers.set("x-starting", "done");
        });
        await Promise.all([ctx.response.start(), ctx.response.start(), ctx.response.write("a")]);
        await ctx.response.end("b");
      });
      app.mapGet("/end", async (ctx) => {
        ctx.response.onStarting(async () => {
          await new Promise((resolve) => setTimeout(resolve, 20));
          ctx.response.headers.set("x-starting", "done");
        });
        void ctx.response.start();
        await ctx.response.end("whole");
      });
    });
    const res = await fetch(url);
    expect(res.headers.get("x-starting")).toBe("done");
    expect(await res.text()).toBe("ab");
    const ended = await fetch(`${url}/end`);
    expect(ended.headers.get("x-starting")).toBe("done");
    expect(await ended.text()).toBe("whole");
  });

  it("answers 500 when an onStarting callback fails as the response starts", async () => {
    const { url } = await serve((app) => {
      app.mapGet("/", async (ctx) => {
        ctx.response.onStarting(() => {
          throw new Error("onStarting failed");
        });
        await ctx.response.write("never sent");
      });
    });
    const res = await fetch(url);
    expect(res.status).toBe(500);
    expect(await res.text()).toBe("");
  });

  it("answers HEAD on GET routes with headers and no body", async () => {
    const { url } = await serve((app) => app.mapGet("/", () => "Hello, World!"));
    const res = await fetch(url, { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-length")).toBe("13");
    expect(await res.text()).toBe("");
  });

  it("resolves port 0 in app.urls and rejects bad options with stable codes", async () => {
    const { app, port } = await serve((a) => a.mapGet("/", () => "x"));
    expect(port).toBeGreaterThan(0);
    expect(app.urls).toEqual([`http://127.0.0.1:${port}`]);
    const { WebApplication } = await import("peregrine");
    expect(() => WebApplication.create({ nope: 1 } as never)).toThrow(
      expect.objectContaining({ code: "PEREGRINE_INVALID_OPTION" }),
    );
    expect(() => WebApplication.create({ limits: { maxRequestBodySize: -1 } })).toThrow(/maxRequestBodySize/);
    const bad = WebApplication.create({ urls: ["http://example.invalid:80"] });
    await expect(bad.start()).rejects.toMatchObject({ code: "PEREGRINE_INVALID_URL" });
    const taken = WebApplication.create({ urls: [`http://127.0.0.1:${port}`] });
    await expect(taken.start()).rejects.toMatchObject({ code: "PEREGRINE_ADDRESS_IN_USE" });
    expect(() => app.mapGet("/late", () => "x")).toThrow(
      expect.objectContaining({ code: "PEREGRINE_ALREADY_STARTED" }),
    );
  });
});
