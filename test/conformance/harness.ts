// The servers the conformance suite runs on, what each can do, and one way to start an
// app on any of them and talk to it.
import { type IServer, silentLogger, TestServer, WebApplication, type WebApplicationOptions } from "peregrine";
import { SocketServer } from "../../examples/custom-server/src/socket-server.js";
import { RawClient } from "../support/server.js";

/**
 * What a case may need beyond the contract's minimum (the request and response
 * features). A server that lacks one reports the case as "not supported".
 */
export type Capability =
  /** Real sockets: raw HTTP/1.1 on the wire (pipelining, framing, header repeats). */
  | "wire"
  /** Binds endpoint URLs; port 0 is resolved in the server-addresses feature. */
  | "addresses"
  /** IHttpRequestLifetimeFeature: ctx.signal and ctx.abort(). */
  | "lifetime"
  /** IHttpConnectionFeature and IHttpRequestIdentifierFeature. */
  | "connection"
  /** Answers `Expect: 100-continue`. */
  | "continue"
  /** Enforces limits.maxRequestBodySize (413) and minRequestBodyDataRate (408). */
  | "limits"
  /** Enforces the request-head limits and timeout on the wire (414, 431, 408). */
  | "headLimits"
  /** Request and response trailers (chunked HTTP/1.1). */
  | "trailers"
  /** https endpoints and ITlsConnectionFeature. */
  | "tls"
  /** HTTP/2 (h2c with prior knowledge, and h2 over TLS with ALPN when it has tls). */
  | "http2"
  /** stop(): stops accepting, lets in-flight requests finish, ends the rest when the signal aborts. */
  | "gracefulStop"
  /** IHttpUpgradeFeature: HTTP/1.1 101 and the connection as a byte stream (docs/upgrade.md). */
  | "upgrade";

export interface StartOptions {
  limits?: WebApplicationOptions["limits"];
  shutdownTimeout?: number;
  tls?: WebApplicationOptions["tls"];
  endpoints?: WebApplicationOptions["endpoints"];
  urls?: string[];
}

export interface ServerUnderTest {
  name: string;
  capabilities: ReadonlySet<Capability>;
  /** The `server` option and whatever else this server takes through WebApplication.create. */
  options(start: StartOptions): WebApplicationOptions;
}

export const ALL: Capability[] = [
  "wire",
  "addresses",
  "lifetime",
  "connection",
  "continue",
  "limits",
  "headLimits",
  "trailers",
  "tls",
  "http2",
  "gracefulStop",
  "upgrade",
];

export const SERVERS: ServerUnderTest[] = [
  {
    name: "native",
    capabilities: new Set(ALL),
    options: (start) => ({ server: "native", ...start }),
  },
  {
    name: "node",
    capabilities: new Set(ALL),
    options: (start) => ({ server: "node", ...start }),
  },
  {
    name: "test",
    capabilities: new Set<Capability>(["lifetime", "connection", "limits", "gracefulStop"]),
    options: (start) => ({
      server: new TestServer({
        logger: silentLogger,
        ...(start.limits !== undefined ? { limits: start.limits } : {}),
        ...(start.shutdownTimeout !== undefined ? { shutdownTimeout: start.shutdownTimeout } : {}),
      }),
    }),
  },
  {
    name: "custom",
    capabilities: new Set<Capability>(["wire", "addresses", "gracefulStop"]),
    options: () => ({ server: new SocketServer() }),
  },
];

/** An app started on one server, and the ways to reach it. */
export class Target {
  constructor(
    readonly sut: ServerUnderTest,
    readonly app: WebApplication,
  ) {}

  get #testServer(): TestServer | undefined {
    return this.app.server instanceof TestServer ? this.app.server : undefined;
  }

  get server(): IServer {
    return this.app.server;
  }

  /** The first bound address (network servers), or the test server's base address. */
  get url(): string {
    return this.app.urls[0] as string;
  }

  get port(): number {
    return Number(new URL(this.url).port);
  }

  /** A standard fetch Response: over the network, or in memory for the test server. */
  fetch(path: string, init?: RequestInit): Promise<Response> {
    const test = this.#testServer;
    if (test !== undefined) return test.fetch(path, init);
    return fetch(new URL(path, this.url), init);
  }

  /** A raw TCP connection to the first address (needs "wire"). */
  raw(): Promise<RawClient> {
    if (!this.sut.capabilities.has("wire")) throw new Error(`${this.sut.name} has no sockets`);
    return RawClient.connect(this.port, new URL(this.url).hostname.replace(/^\[|\]$/g, ""));
  }

  /** Stops the app, giving in-flight requests at most `graceMs`. */
  stop(graceMs = 2000): Promise<void> {
    return this.app.stop(AbortSignal.timeout(graceMs));
  }
}

const running = new Set<Target>();

/** Starts an app on `sut`, on 127.0.0.1 port 0 unless `start.urls` or `start.endpoints` say otherwise. */
export async function startOn(
  sut: ServerUnderTest,
  configure: (app: WebApplication) => void,
  start: StartOptions = {},
): Promise<Target> {
  const urls = start.urls ?? (start.endpoints === undefined ? ["http://127.0.0.1:0"] : undefined);
  const app = WebApplication.create({
    logger: silentLogger,
    ...sut.options({ ...start, ...(urls !== undefined ? { urls } : {}) }),
    ...(urls !== undefined ? { urls } : {}),
  });
  configure(app);
  await app.start();
  const target = new Target(sut, app);
  running.add(target);
  return target;
}

/** Stops whatever a case left running. */
export async function stopAll(): Promise<void> {
  const targets = [...running];
  running.clear();
  await Promise.all(targets.map((t) => t.stop(500).catch(() => {})));
}

/** Rejects with `message` when `promise` takes longer than `ms`. */
export function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${message} (after ${ms} ms)`)), ms);
    }),
  ]);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
