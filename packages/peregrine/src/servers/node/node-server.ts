import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import type { Server as NetServer, Socket } from "node:net";
import type { TLSSocket, Server as TlsServer } from "node:tls";
import { ErrorCodes, PeregrineError } from "../../errors.js";
import { FeatureCollection, type IFeatureCollection, IServerAddressesFeature } from "../../features/index.js";
import { createConsoleLogger, type Logger } from "../../logging.js";
import type { ServerStats } from "../../native/native-server.js";
import { dispatch } from "../../server/dispatch.js";
import { type EndpointOptions, type HttpProtocols, validateEndpoints } from "../../server/endpoints.js";
import { type LimitsOptions, resolveLimits, resolveShutdownTimeout, type ServerLimits } from "../../server/limits.js";
import type { IHttpApplication, IServer } from "../../server/server.js";
import type { TlsOptions } from "../../server/tls.js";
import { bindError, type EndpointUrl, parseEndpointUrl, urlFor } from "../endpoint-url.js";
import { connectionIdString } from "../exchange.js";
import { headRefusal } from "./head-checks.js";
import { NodeConnection, NodeExchange, type NodeExchangeOwner, type NodeResponse } from "./node-exchange.js";
import {
  applyHttp2Limits,
  applyServerLimits,
  clientErrorReason,
  headLimitStatus,
  http2ServerOptions,
  httpServerOptions,
} from "./node-limits.js";
import type { NodeRequest } from "./node-request.js";
import { applyTls, type NodeTlsSettings, nodeTlsSettings, refusesPeer, secureServerOptions } from "./node-tls.js";
import type { NodeUpgradeContext } from "./node-upgrade.js";
import { detectPreface } from "./preface.js";
import { listenUnix } from "./unix-socket.js";

export interface NodeServerOptions {
  /** Request and response limits; docs/limits.md, and docs/servers.md for what node cannot enforce. */
  limits?: LimitsOptions;
  /** Certificates for the https endpoints; docs/tls.md. */
  tls?: TlsOptions;
  /** Endpoints with options, listened on after the addresses in the server-addresses feature. */
  endpoints?: EndpointOptions[];
  /** Milliseconds in-flight requests get to finish on stop(). Default 30000. */
  shutdownTimeout?: number;
  /** Adds `Server: Peregrine` to responses. Default true. */
  addServerHeader?: boolean;
  /** Default: the console, at PEREGRINE_LOG_LEVEL or "info". */
  logger?: Logger;
}

/**
 * Which node server serves an endpoint:
 * - http1 in cleartext: node:http; over TLS: node:https;
 * - http2 in cleartext: node:http2 (h2c with prior knowledge);
 * - http1AndHttp2 in cleartext: node:http, handing connections that open with the
 *   HTTP/2 preface to node:http2 (preface.ts);
 * - http2 or http1AndHttp2 over TLS: node:http2's secure server, ALPN picking h2 or,
 *   for http1AndHttp2, http/1.1.
 */
type Transport = "http" | "https" | "h2c" | "h2" | "http+h2c" | "https+h2";

function transportFor(scheme: "http" | "https", protocols: HttpProtocols): Transport {
  if (scheme === "https") return protocols === "http1" ? "https" : protocols === "http2" ? "h2" : "https+h2";
  return protocols === "http1" ? "http" : protocols === "http2" ? "h2c" : "http+h2c";
}

type AnyServer = http.Server | https.Server | http2.Http2Server | http2.Http2SecureServer;

/** A bound listener: one node server behind one address of an endpoint. */
interface Listener {
  server: AnyServer;
  transport: Transport;
  url: string;
  /** True when the endpoint has its own certificates: reloadTls() leaves it alone. */
  ownTls: boolean;
}

/** An endpoint to bind, with the TLS settings of its connections when it is https. */
interface Binding {
  endpoint: EndpointUrl;
  protocols: HttpProtocols;
  /** The endpoint's own `tls`; undefined for the server's `tls` option. */
  ownTls: TlsOptions | undefined;
}

/**
 * The runtime's own HTTP stack behind the server contract, as HTTP.sys is the
 * platform's own for ASP.NET Core: node:http, node:https and node:http2. It supplies
 * the same features as the NativeServer, so an app runs unchanged on either. Choose it
 * where no prebuilt native binary fits, or to debug down to the JS layer.
 */
export class NodeServer implements IServer, NodeExchangeOwner {
  readonly features: IFeatureCollection = new FeatureCollection();
  readonly logger: Logger;
  readonly addServerHeader: boolean;
  readonly #addresses: string[] = [];
  readonly #endpoints: EndpointOptions[];
  readonly limits: ServerLimits;
  readonly #shutdownTimeout: number;
  #tlsOptions: TlsOptions | undefined;
  #tls: NodeTlsSettings | undefined;
  readonly #listeners: Listener[] = [];
  /** Open connections by their socket (HTTP/1.x) or session (HTTP/2). */
  readonly #connections = new Map<object, NodeConnection>();
  readonly #sockets = new Set<Socket>();
  #upgradedOpen = 0;
  /** Connection ids by socket (HTTP/1.x) or session (HTTP/2), given on first sight. */
  readonly #ids = new WeakMap<object, number>();
  /** Close connections that sent nothing yet, which node's own idle tracking does not see. */
  readonly #idleClosers: (() => void)[] = [];
  /** Connections answered with a refusal, closing once it is sent. */
  readonly #refused = new WeakSet<Socket>();
  #connectionCount = 0;
  #totalConnections = 0;
  #totalRequests = 0;
  readonly #rejections: Record<string, number> = {};
  #application: IHttpApplication<unknown> | undefined;
  #started = false;
  #stopping = false;
  #stopped: Promise<void> | undefined;

  constructor(options: NodeServerOptions = {}) {
    this.limits = resolveLimits(options.limits);
    this.#shutdownTimeout = resolveShutdownTimeout(options.shutdownTimeout);
    this.#endpoints = options.endpoints === undefined ? [] : validateEndpoints(options.endpoints);
    this.#tlsOptions = options.tls;
    this.addServerHeader = options.addServerHeader ?? true;
    this.logger = options.logger ?? createConsoleLogger();
    this.features.set(IServerAddressesFeature, { addresses: this.#addresses });
  }

  /** maxConcurrentUpgradedConnections: counts an upgraded socket until it closes. */
  tryUpgrade(socket: Socket): boolean {
    const max = this.limits.maxConcurrentUpgradedConnections;
    if (max !== null && this.#upgradedOpen >= max) return false;
    this.#upgradedOpen++;
    socket.once("close", () => this.#upgradedOpen--);
    return true;
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  /** Counters since the server started, in the shape of NativeServer.stats. */
  get stats(): ServerStats {
    return {
      currentConnections: this.#sockets.size,
      idleConnections: 0,
      totalConnections: this.#totalConnections,
      totalRequests: this.#totalRequests,
      rejections: { ...this.#rejections },
    };
  }

  #idOf(key: object): number {
    let id = this.#ids.get(key);
    if (id === undefined) {
      id = ++this.#connectionCount;
      this.#ids.set(key, id);
    }
    return id;
  }

  /** One structured event per refusal, as the native server logs it (docs/limits.md). */
  rejected(
    reason: string,
    status: number,
    connection:
      | { connectionId?: string; remoteAddress?: string | undefined; remotePort?: number | undefined }
      | undefined,
    socket?: Socket,
  ): void {
    this.#rejections[reason] = (this.#rejections[reason] ?? 0) + 1;
    this.logger.warn(
      {
        reason,
        status,
        connectionId: connection?.connectionId ?? (socket !== undefined ? connectionIdString(this.#idOf(socket)) : ""),
        remoteAddress: connection?.remoteAddress ?? socket?.remoteAddress ?? "",
        remotePort: connection?.remotePort ?? socket?.remotePort ?? 0,
      },
      "Request rejected",
    );
  }

  /** Requests currently in flight. */
  get inFlight(): number {
    let count = 0;
    for (const connection of this.#connections.values()) count += connection.active;
    return count;
  }

  async start<TContext>(application: IHttpApplication<TContext>): Promise<void> {
    if (this.#started) throw new PeregrineError(ErrorCodes.ALREADY_STARTED, "the node server was already started");
    const endpoints: Binding[] = [
      ...this.#addresses.map(
        (url): Binding => ({ endpoint: parseEndpointUrl(url), protocols: "http1AndHttp2", ownTls: undefined }),
      ),
      ...this.#endpoints.map(
        (e): Binding => ({
          endpoint: parseEndpointUrl(e.url),
          protocols: e.protocols ?? "http1AndHttp2",
          ownTls: e.tls,
        }),
      ),
    ];
    if (endpoints.length === 0) {
      throw new PeregrineError(ErrorCodes.NO_ENDPOINTS, "no endpoints to listen on: give at least one URL");
    }
    const secure = endpoints
      .filter((b) => b.endpoint.scheme === "https" && b.ownTls === undefined)
      .map((b) => `"${b.endpoint.url}"`);
    // Endpoints with their own certificates are checked first, each naming itself.
    const own = new Map(
      endpoints
        .filter((b) => b.endpoint.scheme === "https" && b.ownTls !== undefined)
        .map((b) => [b, nodeTlsSettings(b.ownTls as TlsOptions, `"${b.endpoint.url}"`)]),
    );
    if (secure.length > 0) {
      if (this.#tlsOptions === undefined) {
        throw new PeregrineError(
          ErrorCodes.TLS_NOT_CONFIGURED,
          `TLS for ${secure.join(", ")}: no certificate: set the tls option (tls.cert and tls.key, or tls.sni)`,
        );
      }
      this.#tls = nodeTlsSettings(this.#tlsOptions, secure.join(", "));
    }
    this.#started = true;
    this.#application = application as IHttpApplication<unknown>;
    try {
      for (const binding of endpoints) {
        const { endpoint, protocols } = binding;
        await this.#bind(endpoint, transportFor(endpoint.scheme, protocols), own.get(binding) ?? this.#tls);
      }
    } catch (error) {
      // Nothing stays bound when any endpoint fails, as with the native server.
      await Promise.all(this.#listeners.map((l) => new Promise<void>((resolve) => l.server.close(() => resolve()))));
      this.#listeners.length = 0;
      this.#started = false;
      throw error;
    }
    this.#addresses.splice(0, this.#addresses.length, ...this.#listeners.map((l) => l.url));
  }

  /**
   * Swaps the TLS certificate set: connections opened from now on get `tls`, open ones
   * keep theirs. A bad certificate or key throws, and the current set stays in use.
   */
  reloadTls(tls: TlsOptions): void {
    const secure = this.#listeners.filter(
      (l) => !l.ownTls && (l.transport === "https" || l.transport === "h2" || l.transport === "https+h2"),
    );
    const next = nodeTlsSettings(tls, secure.map((l) => `"${l.url}"`).join(", ") || "the https endpoints");
    this.#tlsOptions = tls;
    if (this.#tls === undefined) {
      this.#tls = next;
      return;
    }
    for (const { server } of secure) applyTls(server as TlsServer, this.#tls, next);
    this.#tls.native = next.native;
    this.#tls.contexts = next.contexts;
  }

  async #bind(endpoint: EndpointUrl, transport: Transport, tls: NodeTlsSettings | undefined): Promise<void> {
    const ownTls = tls !== undefined && tls !== this.#tls;
    const path = endpoint.socketPath;
    if (path !== undefined) {
      const server = this.#createServer(transport, tls);
      try {
        await listenUnix(server as NetServer, path);
      } catch (error) {
        throw bindError(endpoint, "", 0, error as NodeJS.ErrnoException);
      }
      this.#listeners.push({ server, transport, url: `unix:${path}`, ownTls });
      return;
    }
    let port = endpoint.port;
    for (const [i, host] of endpoint.hosts.entries()) {
      const server = this.#createServer(transport, tls);
      try {
        await listen(server, host, port);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        // `localhost` binds IPv6 too when the machine has it.
        if (i > 0 && endpoint.optionalAfterFirst && (code === "EADDRNOTAVAIL" || code === "EAFNOSUPPORT")) continue;
        throw bindError(endpoint, host, port, error as NodeJS.ErrnoException);
      }
      const address = server.address();
      if (address !== null && typeof address === "object") port = address.port;
      this.#listeners.push({ server, transport, url: urlFor(endpoint.scheme, host, port), ownTls });
    }
  }

  #createServer(transport: Transport, tls: NodeTlsSettings | undefined): AnyServer {
    const limits = this.limits;
    const secure = transport === "https" || transport === "h2" || transport === "https+h2";
    let server: AnyServer;
    switch (transport) {
      case "http":
      case "http+h2c":
        server = http.createServer(httpServerOptions(limits));
        break;
      case "https":
        server = https.createServer({
          ...httpServerOptions(limits),
          ...secureServerOptions(tls as NodeTlsSettings),
        });
        break;
      case "h2c":
        server = http2.createServer(http2ServerOptions(limits));
        break;
      case "h2":
      case "https+h2":
        server = http2.createSecureServer({
          ...http2ServerOptions(limits),
          ...secureServerOptions(tls as NodeTlsSettings),
          allowHTTP1: transport === "https+h2",
        });
        break;
    }
    applyServerLimits(server, limits, transport === "https+h2");
    this.#handle(server, secure);
    if (transport === "http+h2c") {
      const h2c = http2.createServer(http2ServerOptions(limits));
      this.#handle(h2c, false);
      const detection = detectPreface(server as http.Server, h2c, limits.keepAliveTimeout);
      this.#idleClosers.push(() => detection.closeUndecided());
    }
    server.on("connection", (socket: Socket) => {
      this.#totalConnections++;
      this.#sockets.add(socket);
      socket.once("close", () => this.#sockets.delete(socket));
    });
    // node hands CONNECT to a 'connect' listener, not to 'request'; Peregrine serves no tunnels.
    server.on("connect", (_req: http.IncomingMessage, socket: Socket) => {
      this.rejected("BAD_REQUEST_TARGET_FORM", 400, undefined, socket);
      socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    });
    server.on("drop", (dropped?: { remoteAddress?: string; remotePort?: number }) =>
      this.rejected("MAX_CONCURRENT_CONNECTIONS", 0, {
        remoteAddress: dropped?.remoteAddress,
        remotePort: dropped?.remotePort,
      }),
    );
    if (secure) {
      server.on("secureConnection", (socket: TLSSocket) => {
        if (refusesPeer(tls as NodeTlsSettings, socket)) socket.destroy();
      });
    }
    return server;
  }

  /** Requests (and HTTP/2 sessions) of a node server go to the app. */
  #handle(server: AnyServer, secure: boolean): void {
    const limits = this.limits;
    server.on("session", (session: http2.ServerHttp2Session) => applyHttp2Limits(session, limits));
    const onRequest = (expectContinue: boolean) => (req: NodeRequest, res: NodeResponse) =>
      this.#dispatch(req, res, secure, expectContinue);
    server.on("request", onRequest(false));
    server.on("checkContinue", onRequest(true));
    if (server instanceof http.Server || server instanceof https.Server) {
      // Requests with an Upgrade header: served like any other, with the socket at hand
      // for IHttpUpgradeFeature (node:http no longer parses the connection).
      server.on("upgrade", (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
        const res = new http.ServerResponse(req);
        res.shouldKeepAlive = false;
        res.assignSocket(socket);
        this.#dispatch(req as NodeRequest, res as NodeResponse, secure, false, { socket, head });
      });
    }
    if (server instanceof http.Server) {
      server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => this.#onClientError(error, socket));
    }
  }

  /**
   * Requests node:http refuses while parsing: answered as node would (400, 408, 431,
   * or 505 for a version), logged with the native server's reason codes.
   */
  #onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
    const detail = error as { reason?: string; rawPacket?: Buffer };
    const refusal = clientErrorReason(error.code, detail.reason, detail.rawPacket);
    if (refusal === undefined || this.#refused.has(socket)) {
      socket.destroy();
      return;
    }
    const connection = this.#connections.get(socket);
    this.rejected(refusal.reason, refusal.status, connection, socket);
    // Requests received in full before the bad one are answered first, then the
    // refusal; an error inside a request still arriving ends that request at once.
    const refuse = () => {
      if (socket.writable) {
        socket.end(
          `HTTP/1.1 ${refusal.status} ${http.STATUS_CODES[refusal.status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
        );
        socket.once("finish", () => socket.destroy());
      } else socket.destroy();
    };
    if (connection?.lastRequestComplete) connection.whenIdle(refuse);
    else refuse();
  }

  /** The connection a request arrived on, made on its first request. */
  #connectionOf(req: NodeRequest): NodeConnection {
    const session = "stream" in req && req.stream !== undefined ? req.stream.session : undefined;
    const key: object = session ?? req.socket;
    let connection = this.#connections.get(key);
    if (connection === undefined) {
      const target = session ?? (req.socket as Socket);
      connection = new NodeConnection(this.#idOf(key), req.socket, session);
      this.#connections.set(key, connection);
      target.once("close", () => this.#connections.delete(key));
      if (this.#stopping) connection.closeWhenIdle();
    }
    return connection;
  }

  #dispatch(
    req: NodeRequest,
    res: NodeResponse,
    https: boolean,
    expectContinue: boolean,
    upgrade?: NodeUpgradeContext,
  ): void {
    this.#totalRequests++;
    if (!("stream" in req)) {
      const refusal = headLimitStatus(req, this.limits) ?? headRefusal(req);
      if (refusal !== undefined) {
        this.rejected(refusal.reason, refusal.status, undefined, req.socket);
        // Whatever follows on this connection is not read: its framing is in doubt.
        this.#refused.add(req.socket);
        res.writeHead(refusal.status, { connection: "close", "content-length": "0" }).end();
        res.once("finish", () => req.socket.destroy());
        return;
      }
    }
    const exchange = new NodeExchange(this, req, res, this.#connectionOf(req), {
      https,
      expectContinue,
      ...(upgrade !== undefined ? { upgrade } : {}),
    });
    const application = this.#application as IHttpApplication<unknown>;
    dispatch(application, exchange, this.logger);
  }

  stop(signal?: AbortSignal): Promise<void> {
    if (!this.#started) return Promise.resolve();
    this.#stopped ??= new Promise<void>((resolve) => {
      this.#stopping = true;
      let open = this.#listeners.length;
      let timer: NodeJS.Timeout | undefined;
      const force = () => {
        for (const connection of this.#connections.values()) connection.destroy();
        for (const socket of this.#sockets) socket.destroy();
      };
      const done = () => {
        if (--open > 0) return;
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", force);
        resolve();
      };
      // Stop accepting; each callback runs once that listener's connections have all closed.
      for (const { server } of this.#listeners) (server as NetServer).close(() => done());
      // Idle keep-alive connections close now, busy ones after their last response;
      // HTTP/2 sessions get GOAWAY and finish their open streams.
      for (const connection of this.#connections.values()) connection.closeWhenIdle();
      for (const close of this.#idleClosers) close();
      if (signal?.aborted) force();
      else {
        signal?.addEventListener("abort", force, { once: true });
        timer = setTimeout(force, this.#shutdownTimeout);
      }
    });
    return this.#stopped;
  }
}

function listen(server: AnyServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once("error", onError);
    server.listen({ host, port, ipv6Only: host.includes(":") }, () => {
      server.off("error", onError);
      resolve();
    });
  });
}
