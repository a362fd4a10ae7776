import http from "node:http";
import type { Socket } from "node:net";
import { ErrorCodes, PeregrineError } from "../../errors.js";
import { FeatureCollection, type IFeatureCollection, IServerAddressesFeature } from "../../features/index.js";
import { createConsoleLogger, type Logger } from "../../logging.js";
import { resolveLimits, type ServerLimits } from "../../server/limits.js";
import type { IHttpApplication, IServer } from "../../server/server.js";
import { bindError, type EndpointUrl, parseEndpointUrl, urlFor } from "../endpoint-url.js";
import { NodeConnection, NodeExchange, type NodeExchangeOwner, type NodeResponse } from "./node-exchange.js";
import type { NodeRequest } from "./node-request.js";
import { httpServerOptions } from "./node-limits.js";

export interface NodeServerOptions {
  /** Request and response limits; docs/limits.md, and docs/servers.md for what node:http cannot enforce. */
  limits?: Parameters<typeof resolveLimits>[0];
  /** Milliseconds in-flight requests get to finish on stop(). Default 30000. */
  shutdownTimeout?: number;
  /** Adds `Server: Peregrine` to responses. Default true. */
  addServerHeader?: boolean;
  logger?: Logger;
}

/** A bound listener: the node server behind one address of an endpoint. */
interface Listener {
  server: http.Server;
  url: string;
}

/**
 * The runtime's own HTTP stack behind the server contract, the way HTTP.sys is the
 * platform's own for ASP.NET Core: node:http for http:// endpoints. It supplies the
 * same features as the NativeServer, so an app runs unchanged on either. Choose it
 * where no prebuilt native binary fits, or to debug down to the JS layer.
 */
export class NodeServer implements IServer, NodeExchangeOwner {
  readonly features: IFeatureCollection = new FeatureCollection();
  readonly logger: Logger;
  readonly addServerHeader: boolean;
  readonly #addresses: string[] = [];
  readonly #limits: ServerLimits;
  readonly #shutdownTimeout: number;
  readonly #listeners: Listener[] = [];
  readonly #connections = new WeakMap<object, NodeConnection>();
  readonly #sockets = new Set<Socket>();
  readonly #exchanges = new Set<NodeExchange>();
  #connectionCount = 0;
  #application: IHttpApplication<unknown> | undefined;
  #started = false;
  #stopping = false;
  #stopped: Promise<void> | undefined;

  constructor(options: NodeServerOptions = {}) {
    this.#limits = resolveLimits(options.limits);
    const timeout = options.shutdownTimeout ?? 30_000;
    if (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout < 0) {
      throw new PeregrineError(ErrorCodes.INVALID_OPTION, `shutdownTimeout = ${String(timeout)} is invalid: expected milliseconds >= 0`);
    }
    this.#shutdownTimeout = timeout;
    this.addServerHeader = options.addServerHeader ?? true;
    this.logger = options.logger ?? createConsoleLogger();
    this.features.set(IServerAddressesFeature, { addresses: this.#addresses });
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  /** Requests currently in flight. */
  get inFlight(): number {
    return this.#exchanges.size;
  }

  async start<TContext>(application: IHttpApplication<TContext>): Promise<void> {
    if (this.#started) throw new PeregrineError(ErrorCodes.ALREADY_STARTED, "the node server was already started");
    this.#started = true;
    this.#application = application as IHttpApplication<unknown>;
    const endpoints = this.#addresses.map(parseEndpointUrl);
    if (endpoints.length === 0) {
      throw new PeregrineError(ErrorCodes.INVALID_OPTION, "no endpoints to listen on: give at least one URL");
    }
    for (const endpoint of endpoints) {
      if (endpoint.scheme === "https") {
        throw new PeregrineError(ErrorCodes.UNSUPPORTED_SCHEME, `endpoint "${endpoint.url}" is https, but the node server has no TLS options yet`);
      }
    }
    try {
      for (const endpoint of endpoints) await this.#bind(endpoint);
    } catch (error) {
      // Nothing stays bound when any endpoint fails, as with the native server.
      await Promise.all(this.#listeners.map((l) => new Promise<void>((resolve) => l.server.close(() => resolve()))));
      this.#listeners.length = 0;
      this.#started = false;
      throw error;
    }
    this.#addresses.splice(0, this.#addresses.length, ...this.#listeners.map((l) => l.url));
  }

  async #bind(endpoint: EndpointUrl): Promise<void> {
    let port = endpoint.port;
    for (const [i, host] of endpoint.hosts.entries()) {
      const server = this.#createServer();
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
      this.#listeners.push({ server, url: urlFor(endpoint.scheme, host, port) });
    }
  }

  #createServer(): http.Server {
    const server = http.createServer(httpServerOptions(this.#limits));
    server.on("connection", (socket: Socket) => this.#onConnection(socket));
    server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => this.#dispatch(req, res, false));
    server.on("checkContinue", (req: http.IncomingMessage, res: http.ServerResponse) => this.#dispatch(req, res, true));
    server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => this.#onClientError(error, socket));
    return server;
  }

  #onConnection(socket: Socket): void {
    this.#connections.set(socket, new NodeConnection(++this.#connectionCount, socket));
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
  }

  /** Malformed requests get node:http's own answer (400, 408 or 431); the reason is logged. */
  #onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
    if (error.code !== "ECONNRESET") this.logger.debug({ code: error.code }, `Bad request: ${error.message}`);
    if (socket.writable && socket.bytesWritten === 0) {
      const status = error.code === "HPE_HEADER_OVERFLOW" ? 431 : error.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
      socket.write(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`);
    }
    socket.destroy(error);
  }

  #dispatch(req: NodeRequest, res: NodeResponse, expectContinue: boolean): void {
    const connection = this.#connections.get(req.socket) ?? new NodeConnection(++this.#connectionCount, req.socket);
    const exchange = new NodeExchange(this, req, res, connection, {
      https: false,
      expectContinue,
      maxRequestBodySize: this.#limits.maxRequestBodySize,
    });
    this.#exchanges.add(exchange);
    const application = this.#application as IHttpApplication<unknown>;
    let context: unknown;
    let pending: Promise<void> | undefined;
    try {
      context = application.createContext(exchange);
      pending = application.processRequest(context);
    } catch (error) {
      this.#end(exchange, context, error);
      return;
    }
    if (pending === undefined) this.#end(exchange, context, undefined);
    else
      pending.then(
        () => this.#end(exchange, context, undefined),
        (error: unknown) => this.#end(exchange, context, error),
      );
  }

  /** After the app is done: complete what it left open, then dispose its context. */
  #end(exchange: NodeExchange, context: unknown, error: unknown): void {
    if (error !== undefined) {
      this.logger.error({ err: error, traceIdentifier: exchange.traceIdentifier }, "The application failed a request");
    }
    if (!exchange.isCompleted) {
      if (error !== undefined && exchange.hasStarted) exchange.abort();
      else {
        try {
          exchange.complete().then(undefined, () => exchange.abort());
        } catch {
          exchange.abort();
        }
      }
    }
    if (context !== undefined) {
      try {
        this.#application?.disposeContext(context, error);
      } catch (disposeError) {
        this.logger.error({ err: disposeError }, "disposeContext failed");
      }
    }
  }

  release(exchange: NodeExchange): void {
    this.#exchanges.delete(exchange);
    // While stopping, a connection whose last response just finished is idle: close it.
    if (this.#stopping) setImmediate(() => this.#closeIdle());
  }

  #closeIdle(): void {
    for (const { server } of this.#listeners) server.closeIdleConnections();
  }

  stop(signal?: AbortSignal): Promise<void> {
    if (!this.#started) return Promise.resolve();
    this.#stopped ??= new Promise<void>((resolve) => {
      this.#stopping = true;
      let open = this.#listeners.length;
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (--open > 0) return;
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", force);
        resolve();
      };
      const force = () => {
        for (const { server } of this.#listeners) server.closeAllConnections();
        for (const socket of this.#sockets) socket.destroy();
      };
      if (open === 0) {
        resolve();
        return;
      }
      // Stops accepting; the callback runs once every connection has closed.
      for (const { server } of this.#listeners) server.close(() => done());
      this.#closeIdle();
      if (signal?.aborted) force();
      else {
        signal?.addEventListener("abort", force, { once: true });
        timer = setTimeout(force, this.#shutdownTimeout);
      }
    });
    return this.#stopped;
  }
}

function listen(server: http.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once("error", onError);
    server.listen({ host, port, ipv6Only: host.includes(":") }, () => {
      server.off("error", onError);
      resolve();
    });
  });
}
