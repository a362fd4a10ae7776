// Configuration: the five sources and their order, environment variables' names,
// validation messages, unknown keys, the environment, and certificates from files.
import { X509Certificate } from "node:crypto";
import fs from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { type Logger, type ServerLimits, silentLogger, WebApplication as WebApp, type WebApplication } from "peregrine";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  hasOpenssl,
  makeCertificates,
  removeCertificates,
  requireTool,
  type TestCertificates,
} from "./support/certs.js";

const folders: string[] = [];
const apps: WebApplication[] = [];
const savedEnv = { ...process.env };

afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.stop()));
  for (const name of Object.keys(process.env)) {
    if (name.toUpperCase().startsWith("PEREGRINE_") && savedEnv[name] === undefined) delete process.env[name];
  }
  Object.assign(process.env, savedEnv);
});
afterAll(() => {
  for (const dir of folders) fs.rmSync(dir, { recursive: true, force: true });
});

/** A content root holding the given files, JSON-encoded unless they are strings. */
function appFolder(files: Record<string, unknown>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "peregrine-config-"));
  folders.push(dir);
  for (const [name, content] of Object.entries(files)) {
    fs.writeFileSync(path.join(dir, name), typeof content === "string" ? content : JSON.stringify(content));
  }
  return dir;
}

/** Sets PEREGRINE_* variables for one test; afterEach restores the environment. */
function setEnv(vars: Record<string, string>): void {
  delete process.env.PEREGRINE_URLS;
  delete process.env.PEREGRINE_ENVIRONMENT;
  Object.assign(process.env, vars);
}

/** A logger that keeps the warnings. */
function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { ...silentLogger, warn: (_fields, message) => warnings.push(message ?? ""), warnings };
}

async function post(url: string, bytes: number): Promise<number> {
  const res = await fetch(url, { method: "POST", body: "x".repeat(bytes) });
  await res.arrayBuffer();
  return res.status;
}

async function started(app: WebApplication): Promise<string> {
  apps.push(app);
  app.mapPost("/", async (ctx) => (await ctx.request.bytes()).length);
  app.mapGet("/", () => "ok");
  await app.start();
  return app.urls[0] as string;
}

describe("configuration sources", () => {
  it("layers peregrine.json, the environment's file, variables, arguments and code, later ones winning", async () => {
    const dir = appFolder({
      "peregrine.json": {
        urls: "http://127.0.0.1:1",
        server: { limits: { maxRequestBodySize: 10 }, addServerHeader: true, shutdownTimeout: 500 },
        myApp: { greeting: "from peregrine.json", farewell: "bye" },
      },
      "peregrine.Development.json": {
        server: { limits: { maxRequestBodySize: 20 }, addServerHeader: false },
        myApp: { greeting: "from peregrine.Development.json" },
      },
    });
    setEnv({
      PEREGRINE_ENVIRONMENT: "Development",
      PEREGRINE_URLS: "http://127.0.0.1:0",
      PEREGRINE_SERVER__LIMITS__MAXREQUESTBODYSIZE: "30",
    });
    const args = ["--server:limits:maxRequestBodySize=40"];
    const builder = WebApp.createBuilder(args, { contentRoot: dir, logger: silentLogger });
    expect(builder.configuration.get("server:limits:maxRequestBodySize")).toBe("40");
    expect(builder.configuration.entry("server:limits:maxRequestBodySize")?.source.kind).toBe("argument");
    expect(builder.configuration.get("myApp:greeting")).toBe("from peregrine.Development.json");
    expect(builder.configuration.get("MYAPP:FAREWELL")).toBe("bye");
    expect(builder.configuration.get("urls")).toBe("http://127.0.0.1:0");

    // Without options in code, the argument wins: 40 bytes pass, 41 do not.
    const fromArgs = await started(builder.build());
    expect(await post(fromArgs, 40)).toBe(200);
    expect(await post(fromArgs, 41)).toBe(413);
    // peregrine.Development.json turned the Server header off; nothing later set it.
    expect((await fetch(fromArgs)).headers.get("server")).toBeNull();

    // Options in code win over every source, limit by limit.
    const withCode = WebApp.createBuilder(args, {
      contentRoot: dir,
      logger: silentLogger,
      limits: { maxRequestBodySize: 50 },
    });
    const fromCode = await started(withCode.build());
    expect(await post(fromCode, 50)).toBe(200);
    expect(await post(fromCode, 51)).toBe(413);
  });

  it("reads each lower source when no later one sets the key", async () => {
    const dir = appFolder({
      "peregrine.json": { urls: ["http://127.0.0.1:0"], server: { limits: { maxRequestBodySize: 10 } } },
    });
    setEnv({});
    const url = await started(WebApp.createBuilder([], { contentRoot: dir, logger: silentLogger }).build());
    expect(await post(url, 10)).toBe(200);
    expect(await post(url, 11)).toBe(413);
    expect((await fetch(url)).headers.get("server")).toBe("Peregrine");
  });

  it("maps PEREGRINE_ variables case-insensitively, with __ between sections", () => {
    setEnv({
      PEREGRINE_SERVER__LIMITS__HTTP2__MAXFRAMESIZE: "20000",
      peregrine_server__limits__keepAliveTimeout: "5000",
      PEREGRINE_MYAPP__NAME: "from env",
      PEREGRINE_SERVER: "node",
      PEREGRINE_LOG_LEVEL: "error",
    });
    const config = WebApp.createBuilder([], { contentRoot: appFolder({}) }).configuration;
    expect(config.get("server:limits:http2:maxFrameSize")).toBe("20000");
    expect(config.get("Server:Limits:KeepAliveTimeout")).toBe("5000");
    expect(config.get("myApp:name")).toBe("from env");
    // The two variables older than the configuration model keep their short names.
    expect(config.get("server:kind")).toBe("node");
    expect(config.get("logging:logLevel:default")).toBe("error");
    expect(
      config
        .getSection("server:limits")
        .getChildren()
        .map((c) => c.key),
    ).toEqual(["LIMITS__HTTP2__MAXFRAMESIZE".split("__")[1], "keepAliveTimeout"]);
  });

  it("binds limit sections key by key, and a later null replaces a data rate", () => {
    setEnv({ PEREGRINE_SERVER__LIMITS__MINREQUESTBODYDATARATE: "null" });
    const dir = appFolder({
      "peregrine.json": {
        server: {
          kind: "node",
          limits: {
            minRequestBodyDataRate: { bytesPerSecond: 100, gracePeriod: 1000 },
            minResponseDataRate: { bytesPerSecond: 50, gracePeriod: 2000 },
            http2: { maxStreamsPerConnection: 7 },
          },
        },
      },
    });
    const app = WebApp.createBuilder(["--server:limits:http2:headerTableSize=0"], {
      contentRoot: dir,
      logger: silentLogger,
      limits: { http2: { maxFrameSize: 20_000 } },
    }).build();
    const limits = (app.server as unknown as { limits: ServerLimits }).limits;
    expect(limits.minRequestBodyDataRate).toBeNull();
    expect(limits.minResponseDataRate).toEqual({ bytesPerSecond: 50, gracePeriod: 2000 });
    expect([limits.http2.maxStreamsPerConnection, limits.http2.headerTableSize, limits.http2.maxFrameSize]).toEqual([
      7, 0, 20_000,
    ]);
  });

  it("sets the console logger's level from logging:logLevel:default", () => {
    setEnv({});
    delete process.env.PEREGRINE_LOG_LEVEL;
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const dir = appFolder({ "peregrine.json": { logging: { logLevel: { default: "error" } } } });
      const app = WebApp.createBuilder([], { contentRoot: dir }).build();
      app.logger.info({}, "hidden");
      app.logger.error({}, "shown");
      expect(log).not.toHaveBeenCalled();
      expect(error).toHaveBeenCalledWith("fail: shown");
    } finally {
      log.mockRestore();
      error.mockRestore();
    }
  });

  it("takes --key=value, --key value and key=value arguments", () => {
    const config = WebApp.createBuilder(["--urls", "http://127.0.0.1:0", "myApp:a=1", "--myApp:b=x=y"], {
      contentRoot: appFolder({}),
    }).configuration;
    expect(config.get("urls")).toBe("http://127.0.0.1:0");
    expect(config.get("myApp:a")).toBe("1");
    expect(config.get("myApp:b")).toBe("x=y");
    expect(() => WebApp.createBuilder(["--urls"], { contentRoot: appFolder({}) })).toThrow(
      expect.objectContaining({ code: "PEREGRINE_INVALID_CONFIG", message: expect.stringContaining("--urls") }),
    );
    expect(() => WebApp.createBuilder(["stray"], { contentRoot: appFolder({}) })).toThrow(
      expect.objectContaining({ code: "PEREGRINE_INVALID_CONFIG", message: expect.stringContaining('"stray"') }),
    );
  });

  it("binds the server kind, the endpoints and a list of urls", async () => {
    setEnv({});
    const dir = appFolder({
      "peregrine.json": {
        server: { kind: "node", endpoints: { api: { url: "http://127.0.0.1:0", protocols: "http1" } } },
      },
    });
    const app = WebApp.createBuilder([], { contentRoot: dir, logger: silentLogger }).build();
    expect(app.server.constructor.name).toBe("NodeServer");
    const url = await started(app);
    expect(await (await fetch(url)).text()).toBe("ok");
  });
});

describe("configuration errors", () => {
  const invalid = (message: RegExp) =>
    expect.objectContaining({ code: "PEREGRINE_INVALID_CONFIG", message: expect.stringMatching(message) });

  it("names the file, the key, the value and the rule", () => {
    const dir = appFolder({ "peregrine.json": { server: { limits: { maxRequestHeaderCount: 0 } } } });
    expect(() => WebApp.createBuilder([], { contentRoot: dir })).toThrow(
      invalid(
        new RegExp(
          `^${dir.replaceAll("/", "\\/")}\\/peregrine\\.json: server:limits:maxRequestHeaderCount = 0 is invalid: expected a whole number of fields from 1`,
        ),
      ),
    );
  });

  it("names the variable, with the key spelt as documented", () => {
    setEnv({ PEREGRINE_SERVER__LIMITS__MINREQUESTBODYDATARATE__BYTESPERSECOND: "fast" });
    expect(() => WebApp.createBuilder([], { contentRoot: appFolder({}) })).toThrow(
      invalid(
        /^environment variable PEREGRINE_SERVER__LIMITS__MINREQUESTBODYDATARATE__BYTESPERSECOND: server:limits:minRequestBodyDataRate:bytesPerSecond = "fast" is invalid: expected \{ bytesPerSecond/,
      ),
    );
  });

  it("names the argument", () => {
    expect(() => WebApp.createBuilder(["--server:shutdownTimeout=-1"], { contentRoot: appFolder({}) })).toThrow(
      invalid(
        /^command-line argument --server:shutdownTimeout: server:shutdownTimeout = "-1" is invalid: expected whole milliseconds/,
      ),
    );
    expect(() => WebApp.createBuilder(["--server:kind=kestrel"], { contentRoot: appFolder({}) })).toThrow(
      invalid(/server:kind = "kestrel" is invalid: expected "native", "node"/),
    );
    expect(() => WebApp.createBuilder(["--server:addServerHeader=maybe"], { contentRoot: appFolder({}) })).toThrow(
      invalid(/server:addServerHeader = "maybe" is invalid: expected true or false/),
    );
    expect(() => WebApp.createBuilder(["--logging:logLevel:default=loud"], { contentRoot: appFolder({}) })).toThrow(
      invalid(/logging:logLevel:default = "loud" is invalid: use "debug"/),
    );
  });

  it("names the endpoint by its key", () => {
    const dir = appFolder({
      "peregrine.json": { server: { endpoints: { web: { url: "http://127.0.0.1:0", protocols: "h3" } } } },
    });
    expect(() => WebApp.createBuilder([], { contentRoot: dir })).toThrow(
      invalid(/peregrine\.json: server:endpoints:web:protocols = "h3" is invalid: use "http1"/),
    );
    const noUrl = appFolder({ "peregrine.json": { server: { endpoints: { web: { protocols: "http1" } } } } });
    expect(() => WebApp.createBuilder([], { contentRoot: noUrl })).toThrow(
      invalid(/server:endpoints:web:url is missing: every endpoint needs a url/),
    );
  });

  it("reports a file that is not JSON, and an environment name that is not a file name", () => {
    const dir = appFolder({ "peregrine.json": "{ server: " });
    expect(() => WebApp.createBuilder([], { contentRoot: dir })).toThrow(invalid(/peregrine\.json is not valid JSON/));
    expect(() => WebApp.createBuilder(["--environment=../etc"], { contentRoot: appFolder({}) })).toThrow(
      invalid(/command-line argument --environment: environment = "\.\.\/etc" is invalid/),
    );
  });

  it("warns about unknown keys, with a did-you-mean, and leaves the app's own keys alone", () => {
    const dir = appFolder({
      "peregrine.json": {
        server: { limits: { maxRequestBodySise: 5 }, maxRequestHeaderCount: 5, colour: "blue" },
        ulrs: "http://127.0.0.1:0",
        myApp: { anything: true },
      },
    });
    setEnv({ PEREGRINE_LOGGING__LOGLEVEL__DEFALT: "info" });
    const logger = recordingLogger();
    WebApp.createBuilder([], { contentRoot: dir, logger }).build();
    const file = path.join(dir, "peregrine.json");
    expect(logger.warnings.sort()).toEqual(
      [
        `${file}: unknown configuration key "server:limits:maxRequestBodySise"; did you mean "server:limits:maxRequestBodySize"?`,
        `${file}: unknown configuration key "server:maxRequestHeaderCount"; did you mean "server:limits:maxRequestHeaderCount"?`,
        `${file}: unknown configuration key "server:colour"`,
        `${file}: unknown configuration key "ulrs"; did you mean "urls"?`,
        `environment variable PEREGRINE_LOGGING__LOGLEVEL__DEFALT: unknown configuration key "LOGGING:LOGLEVEL:DEFALT"; did you mean "logging:logLevel:default"?`,
      ].sort(),
    );
  });
});

describe("environment", () => {
  it("defaults to Production, and comes from PEREGRINE_ENVIRONMENT, --environment, then code", () => {
    setEnv({});
    const root = appFolder({});
    const production = WebApp.createBuilder([], { contentRoot: root }).environment;
    expect([production.name, production.isProduction(), production.isDevelopment()]).toEqual([
      "Production",
      true,
      false,
    ]);
    expect(production.contentRootPath).toBe(root);
    process.env.PEREGRINE_ENVIRONMENT = "development";
    const development = WebApp.createBuilder([], { contentRoot: root }).environment;
    expect([development.name, development.isDevelopment(), development.isEnvironment("DEVELOPMENT")]).toEqual([
      "development",
      true,
      true,
    ]);
    expect(WebApp.createBuilder(["--environment", "Staging"], { contentRoot: root }).environment.isStaging()).toBe(
      true,
    );
    expect(
      WebApp.createBuilder(["--environment=Staging"], { contentRoot: root, environment: "Test" }).environment.name,
    ).toBe("Test");
  });

  it("is on apps made by create() and by the builder", () => {
    setEnv({ PEREGRINE_ENVIRONMENT: "Staging" });
    expect(WebApp.create({ logger: silentLogger }).environment.name).toBe("Staging");
    expect(WebApp.create({ logger: silentLogger, environment: "Development" }).environment.isDevelopment()).toBe(true);
    const root = appFolder({});
    const app = WebApp.createBuilder([], { contentRoot: root, logger: silentLogger }).build();
    expect([app.environment.name, app.environment.contentRootPath]).toEqual(["Staging", root]);
  });

  it("picks the environment's file", () => {
    setEnv({ PEREGRINE_ENVIRONMENT: "Staging" });
    const dir = appFolder({
      "peregrine.json": { myApp: { from: "base" } },
      "peregrine.Staging.json": { myApp: { from: "staging" } },
      "peregrine.Development.json": { myApp: { from: "development" } },
    });
    expect(WebApp.createBuilder([], { contentRoot: dir }).configuration.get("myApp:from")).toBe("staging");
  });
});

describe("certificates from configuration", () => {
  const haveOpenssl = requireTool("openssl", hasOpenssl());
  let certs: TestCertificates | undefined;
  beforeAll(() => {
    if (haveOpenssl) certs = makeCertificates();
  });
  afterAll(() => removeCertificates(certs));

  it.runIf(haveOpenssl)("serves https with the default certificate read from files", async () => {
    const c = certs as TestCertificates;
    setEnv({});
    const dir = appFolder({});
    fs.copyFileSync(c.files["server.cert"] as string, path.join(dir, "server.crt"));
    fs.copyFileSync(c.files["server.key"] as string, path.join(dir, "server.key"));
    fs.writeFileSync(
      path.join(dir, "peregrine.json"),
      JSON.stringify({
        urls: "https://127.0.0.1:0",
        server: { certificates: { default: { path: "server.crt", keyPath: "server.key" } } },
      }),
    );
    const url = await started(WebApp.createBuilder([], { contentRoot: dir, logger: silentLogger }).build());
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get(url, { ca: c.ca.cert, agent: false }, (res) => {
          let text = "";
          res.on("data", (d: Buffer) => (text += d));
          res.on("end", () => resolve(text));
        })
        .on("error", reject);
    });
    expect(body).toBe("ok");
  });

  /** The fingerprint of the certificate a TLS server presents. */
  function servedFingerprint(url: string): Promise<string> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: hostname, port: Number(port), rejectUnauthorized: false }, () => {
        resolve(socket.getPeerCertificate().fingerprint256);
        socket.end();
      });
      socket.on("error", reject);
    });
  }

  for (const kind of ["native", "node"] as const) {
    it.runIf(haveOpenssl)(`gives an endpoint its own certificate on the ${kind} server`, async () => {
      const c = certs as TestCertificates;
      setEnv({});
      const dir = appFolder({ "server.crt": c.server.cert, "server.key": c.server.key });
      fs.writeFileSync(path.join(dir, "api.crt"), c.api.cert);
      fs.writeFileSync(path.join(dir, "api.key"), c.api.key);
      fs.writeFileSync(
        path.join(dir, "peregrine.json"),
        JSON.stringify({
          server: {
            kind,
            certificates: { default: { path: "server.crt", keyPath: "server.key" } },
            endpoints: {
              shared: { url: "https://127.0.0.1:0" },
              api: { url: "https://127.0.0.1:0", certificate: { path: "api.crt", keyPath: "api.key" } },
            },
          },
        }),
      );
      const app = WebApp.createBuilder([], { contentRoot: dir, logger: silentLogger }).build();
      await started(app);
      const [shared, api] = app.urls as [string, string];
      const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;
      expect(await servedFingerprint(shared)).toBe(fingerprint(c.server.cert));
      expect(await servedFingerprint(api)).toBe(fingerprint(c.api.cert));
      // Reloading replaces the default certificates only.
      app.reloadTls({ cert: c.reloaded.cert, key: c.reloaded.key });
      expect(await servedFingerprint(shared)).toBe(fingerprint(c.reloaded.cert));
      expect(await servedFingerprint(api)).toBe(fingerprint(c.api.cert));
    });
  }

  /** Status of GET / over TLS, or the error's message when the handshake or request fails. */
  function getWith(url: string, ca: string, client?: { cert: string; key: string }): Promise<number | string> {
    return new Promise((resolve) => {
      https
        // The api certificate names api.example.test; the chain is still checked.
        .get(url, { ca, agent: false, checkServerIdentity: () => undefined, ...client }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        })
        .on("error", (error) => resolve(error.message));
    });
  }

  it.runIf(haveOpenssl)(
    "requires client certificates from the CA file, for every endpoint or for one that has its own certificate",
    async () => {
      const c = certs as TestCertificates;
      setEnv({});
      const dir = appFolder({
        "server.crt": c.server.cert,
        "server.key": c.server.key,
        "api.crt": c.api.cert,
        "api.key": c.api.key,
        "clients-ca.pem": c.ca.cert,
      });
      fs.writeFileSync(
        path.join(dir, "peregrine.json"),
        JSON.stringify({
          urls: "https://127.0.0.1:0",
          server: {
            certificates: { default: { path: "server.crt", keyPath: "server.key" } },
            clientCertificateMode: "allow",
            clientCertificateCa: "clients-ca.pem",
            endpoints: {
              api: {
                url: "https://127.0.0.1:0",
                certificate: { path: "api.crt", keyPath: "api.key" },
                clientCertificateMode: "require",
                clientCertificateCa: "clients-ca.pem",
              },
            },
          },
        }),
      );
      const app = WebApp.createBuilder([], { contentRoot: dir, logger: silentLogger }).build();
      await started(app);
      const [shared, api] = app.urls as [string, string];
      const client = { cert: c.client.cert, key: c.client.key };
      // "allow" on the default endpoints: with or without a certificate.
      expect(await getWith(shared, c.ca.cert)).toBe(200);
      expect(await getWith(shared, c.ca.cert, client)).toBe(200);
      // "require" on the endpoint: refused without one, and with one from another CA.
      expect(await getWith(api, c.ca.cert)).toMatch(/certificate required|alert|socket hang up|ECONNRESET/i);
      expect(await getWith(api, c.ca.cert, { cert: c.strangerClient.cert, key: c.strangerClient.key })).toMatch(
        /unknown ca|bad certificate|alert|socket hang up|ECONNRESET/i,
      );
      expect(await getWith(api, c.ca.cert, client)).toBe(200);
    },
  );

  it.runIf(haveOpenssl)("names the key of a client-certificate setting that cannot apply", () => {
    const c = certs as TestCertificates;
    const dir = appFolder({ "server.crt": c.server.cert, "server.key": c.server.key, "ca.pem": c.ca.cert });
    const fails = (args: string[], message: string) =>
      expect(() => WebApp.createBuilder(args, { contentRoot: dir })).toThrow(
        expect.objectContaining({ code: "PEREGRINE_INVALID_CONFIG", message: expect.stringContaining(message) }),
      );
    fails(
      [
        "--server:clientCertificateMode=sometimes",
        "--server:certificates:default:path=server.crt",
        "--server:certificates:default:keyPath=server.key",
      ],
      'server:clientCertificateMode = "sometimes" is invalid: use "none", "allow" or "require"',
    );
    fails(
      ["--server:clientCertificateMode=require", "--server:clientCertificateCa=ca.pem"],
      "this needs server:certificates:default",
    );
    fails(
      [
        "--server:clientCertificateMode=allow",
        "--server:certificates:default:path=server.crt",
        "--server:certificates:default:keyPath=server.key",
      ],
      'server:clientCertificateMode = "allow" is invalid: give server:clientCertificateCa too',
    );
    fails(["--server:clientCertificateCa=missing.pem"], "cannot be read (ENOENT)");
    fails(
      ["--server:endpoints:api:url=https://127.0.0.1:0", "--server:endpoints:api:clientCertificateCa=ca.pem"],
      "server:endpoints:api:clientCertificateCa",
    );
    fails(
      [
        "--server:endpoints:api:url=https://127.0.0.1:0",
        "--server:endpoints:api:clientCertificateMode=require",
        "--server:endpoints:api:clientCertificateCa=ca.pem",
      ],
      'server:endpoints:api:clientCertificateMode = "require" is invalid: an endpoint\'s client-certificate settings go with its own certificate (server:endpoints:api:certificate)',
    );
  });

  it.runIf(haveOpenssl)("names the key and the path of a missing or unusable file", () => {
    const c = certs as TestCertificates;
    const dir = appFolder({
      "peregrine.json": { server: { certificates: { default: { path: "missing.crt", keyPath: "server.key" } } } },
      "server.key": c.server.key,
      "not-a-cert.pem": "hello",
    });
    expect(() => WebApp.createBuilder([], { contentRoot: dir })).toThrow(
      expect.objectContaining({
        code: "PEREGRINE_INVALID_CONFIG",
        message: expect.stringContaining(
          `server:certificates:default:path = "missing.crt" is invalid: the file ${path.join(dir, "missing.crt")} cannot be read (ENOENT)`,
        ),
      }),
    );
    expect(() =>
      WebApp.createBuilder(["--server:certificates:default:path=not-a-cert.pem"], { contentRoot: dir }),
    ).toThrow(expect.objectContaining({ message: expect.stringContaining("is not a usable PEM file") }));
    expect(() =>
      WebApp.createBuilder(["--server:certificates:default:keyPath=server.key"], { contentRoot: appFolder({}) }),
    ).toThrow(
      expect.objectContaining({ message: expect.stringContaining("server:certificates:default:path is missing") }),
    );
  });
});
