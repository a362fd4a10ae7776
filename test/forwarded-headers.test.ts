// The forwarded headers middleware (app.useForwardedHeaders) on the in-memory TestServer,
// whose connections come from 127.0.0.1 unless a test middleware says otherwise.
// The real proxies in front of real sockets are in test/proxies/.
import { type ForwardedHeadersOptions, type HttpContext, silentLogger, TestServer, WebApplication } from "peregrine";
import { afterEach, describe, expect, it } from "vitest";

let running: WebApplication | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
});

/** What the app saw after the middleware ran. */
interface Seen {
  remoteAddress: string;
  remotePort: number;
  scheme: string;
  host: string;
  headers: Record<string, string | string[]>;
}

/**
 * Starts an app with the middleware, sends one request with `headers`, and returns
 * what the endpoint saw. `peer` stands in for the connection's remote address.
 */
async function seen(
  headers: Record<string, string> | [string, string][],
  options?: ForwardedHeadersOptions,
  peer?: string,
): Promise<Seen> {
  const server = new TestServer({ logger: silentLogger });
  const app = WebApplication.create({ server, logger: silentLogger });
  running = app;
  if (peer !== undefined) {
    app.use((ctx, next) => {
      ctx.connection.remoteAddress = peer;
      ctx.connection.remotePort = 40000;
      return next();
    });
  }
  app.useForwardedHeaders(options);
  app.mapGet("/", (ctx: HttpContext) => ({
    remoteAddress: ctx.connection.remoteAddress,
    remotePort: ctx.connection.remotePort,
    scheme: ctx.request.scheme,
    host: ctx.request.host,
    headers: ctx.request.headers.toJSON(),
  }));
  await app.start();
  const res = await server.fetch("http://app.internal/", { headers });
  expect(res.status).toBe(200);
  return (await res.json()) as Seen;
}

describe("X-Forwarded-*", () => {
  it("applies for, proto and host from a loopback proxy and keeps the originals", async () => {
    const s = await seen({
      "x-forwarded-for": "203.0.113.7:5151",
      "x-forwarded-proto": "HTTPS",
      "x-forwarded-host": "shop.example:8443",
    });
    expect([s.remoteAddress, s.remotePort, s.scheme, s.host]).toEqual([
      "203.0.113.7",
      5151,
      "https",
      "shop.example:8443",
    ]);
    expect(s.headers["x-original-for"]).toBe("127.0.0.1");
    expect(s.headers["x-original-proto"]).toBe("http");
    expect(s.headers["x-original-host"]).toBe("app.internal");
    for (const name of ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"]) {
      expect(s.headers[name], name).toBeUndefined();
    }
  });

  it("takes one hop by default and leaves the rest in the header", async () => {
    const s = await seen({ "x-forwarded-for": "198.51.100.1, 10.0.0.9, 127.0.0.5" });
    expect(s.remoteAddress).toBe("127.0.0.5");
    expect(s.remotePort).toBe(0);
    expect(s.headers["x-forwarded-for"]).toBe("198.51.100.1, 10.0.0.9");
  });

  it("walks further hops only while each one is a known proxy", async () => {
    const header = { "x-forwarded-for": "198.51.100.1, 10.0.0.9, 127.0.0.5" };
    const trusted = { knownNetworks: ["127.0.0.0/8", "10.0.0.0/8"], forwardLimit: null };
    expect((await seen(header, trusted)).remoteAddress).toBe("198.51.100.1");
    await running?.stop();
    // 10.0.0.9 is not trusted: what it claims (198.51.100.1) is not believed.
    const s = await seen(header, { knownNetworks: ["127.0.0.0/8"], forwardLimit: 5 });
    expect(s.remoteAddress).toBe("10.0.0.9");
    expect(s.headers["x-forwarded-for"]).toBe("198.51.100.1");
    await running?.stop();
    expect((await seen(header, { ...trusted, forwardLimit: 2 })).remoteAddress).toBe("10.0.0.9");
  });

  it("ignores the headers of a peer that is not a known proxy", async () => {
    const headers = { "x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https" };
    const s = await seen(headers, {}, "192.0.2.50");
    expect([s.remoteAddress, s.scheme, s.headers["x-forwarded-for"]]).toEqual(["192.0.2.50", "http", "203.0.113.7"]);
    expect(s.headers["x-original-for"]).toBeUndefined();
    await running?.stop();
    // Given proxies replace the loopback default.
    expect((await seen(headers, { knownProxies: ["10.1.2.3"] })).remoteAddress).toBe("127.0.0.1");
    await running?.stop();
    expect((await seen(headers, { knownProxies: ["10.1.2.3"] }, "10.1.2.3")).remoteAddress).toBe("203.0.113.7");
  });

  it("matches IPv4-mapped IPv6 peers against IPv4 networks, and IPv6 ones", async () => {
    const headers = { "x-forwarded-for": "203.0.113.7" };
    expect((await seen(headers, {}, "::ffff:127.0.0.1")).remoteAddress).toBe("203.0.113.7");
    await running?.stop();
    expect((await seen(headers, { knownNetworks: ["fd00::/8"] }, "fd12::1")).remoteAddress).toBe("203.0.113.7");
    await running?.stop();
    expect((await seen(headers, { knownNetworks: ["fd00::/8"] }, "fe80::1")).remoteAddress).toBe("fe80::1");
  });

  it("trusts a peer without an IP address (a unix socket) for the first hop", async () => {
    const s = await seen({ "x-forwarded-for": "203.0.113.7, 198.51.100.2" }, { forwardLimit: 2 }, "");
    // 198.51.100.2 is not a known proxy, so only the first hop applies.
    expect(s.remoteAddress).toBe("198.51.100.2");
    expect(s.headers["x-original-for"]).toBeUndefined();
  });

  it("applies only the selected headers", async () => {
    const s = await seen(
      { "x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https", "x-forwarded-host": "evil.example" },
      { forwardedHeaders: ["proto"] },
    );
    expect([s.remoteAddress, s.scheme, s.host]).toEqual(["127.0.0.1", "https", "app.internal"]);
    expect(s.headers["x-forwarded-for"]).toBe("203.0.113.7");
    expect(s.headers["x-forwarded-host"]).toBe("evil.example");
  });

  it("stops at an entry that is not an IP, keeping what came before", async () => {
    const s = await seen({ "x-forwarded-for": "203.0.113.7, garbage" }, { forwardLimit: null });
    expect(s.remoteAddress).toBe("127.0.0.1");
    expect(s.headers["x-forwarded-for"]).toBe("203.0.113.7, garbage");
  });

  it("joins repeated header lines into one list", async () => {
    const s = await seen(
      [
        ["x-forwarded-for", "203.0.113.7"],
        ["x-forwarded-for", "198.51.100.2"],
      ],
      { forwardLimit: 1 },
    );
    expect(s.remoteAddress).toBe("198.51.100.2");
    expect(s.headers["x-forwarded-for"]).toBe("203.0.113.7");
  });
});

describe("Forwarded (RFC 7239)", () => {
  it("applies for with an IPv6 address and port, proto and host", async () => {
    const s = await seen({ forwarded: 'for="[2001:db8:cafe::17]:4711";proto=https;host=example.com' });
    expect([s.remoteAddress, s.remotePort, s.scheme, s.host]).toEqual([
      "2001:db8:cafe::17",
      4711,
      "https",
      "example.com",
    ]);
    expect(s.headers.forwarded).toBeUndefined();
    expect(s.headers["x-original-for"]).toBe("127.0.0.1");
  });

  it("keeps the elements it did not use", async () => {
    const s = await seen({ forwarded: "for=192.0.2.60;proto=http, for=198.51.100.17;by=203.0.113.43" });
    expect(s.remoteAddress).toBe("198.51.100.17");
    expect(s.headers.forwarded).toBe("for=192.0.2.60;proto=http");
  });

  it("applies proto from a hop with an obfuscated or unknown for, and goes no further", async () => {
    for (const node of ["_hidden", "unknown"]) {
      const s = await seen({ forwarded: `for=192.0.2.1, for=${node};proto=https` }, { forwardLimit: null });
      expect([s.remoteAddress, s.scheme], node).toEqual(["127.0.0.1", "https"]);
      await running?.stop();
    }
  });

  it("applies nothing from a malformed header", async () => {
    const s = await seen({ forwarded: 'for="192.0.2.1;proto=https' });
    expect([s.remoteAddress, s.scheme]).toEqual(["127.0.0.1", "http"]);
  });

  it("applies neither format when both arrive", async () => {
    const s = await seen({ forwarded: "for=192.0.2.1", "x-forwarded-for": "198.51.100.2" });
    expect(s.remoteAddress).toBe("127.0.0.1");
    expect(s.headers.forwarded).toBe("for=192.0.2.1");
    expect(s.headers["x-forwarded-for"]).toBe("198.51.100.2");
  });
});

describe("options", () => {
  it.each([
    [{ knownNetworks: ["10.0.0.0"] }, 'knownNetworks[0] = "10.0.0.0" is not a CIDR network'],
    [{ knownNetworks: ["10.0.0.0/33"] }, "knownNetworks[0]"],
    [{ knownNetworks: ["::1/129"] }, "knownNetworks[0]"],
    [{ knownProxies: ["localhost"] }, 'knownProxies[0] = "localhost" is not an IP address'],
    [{ knownProxies: "127.0.0.1" }, "knownProxies must be an array of strings"],
    [{ forwardLimit: 0 }, "forwardLimit must be a whole number"],
    [{ forwardLimit: 1.5 }, "forwardLimit must be a whole number"],
    [{ forwardedHeaders: ["for", "client"] }, 'forwardedHeaders has "client"'],
    [{ forwardLimits: 2 }, '"forwardLimits" is not an option'],
  ])("rejects %j", (options, message) => {
    const app = WebApplication.create({ server: new TestServer({ logger: silentLogger }), logger: silentLogger });
    let error: unknown;
    try {
      app.useForwardedHeaders(options as ForwardedHeadersOptions);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: "PEREGRINE_INVALID_FORWARDED_HEADERS_OPTION" });
    expect((error as Error).message).toContain(message);
  });
});
