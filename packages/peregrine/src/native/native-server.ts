import { fromNativeError } from "../errors.js";
import {
  FeatureCollection,
  type IFeatureCollection,
  IServerAddressesFeature,
  type ITlsConnectionFeature,
} from "../features/index.js";
import { createConsoleLogger, type Logger } from "../logging.js";
import { dispatch } from "../server/dispatch.js";
import { type EndpointOptions, validateEndpoints } from "../server/endpoints.js";
import { type LimitsOptions, resolveLimits, resolveShutdownTimeout, type ServerLimits } from "../server/limits.js";
import type { IHttpApplication, IServer } from "../server/server.js";
import { type NativeTlsOptions, type TlsOptions, toNativeTlsOptions } from "../server/tls.js";
import { connectionIdString, type ExchangeLimits } from "../servers/exchange.js";
import { loadNativeBinding, type NativeServerHandle } from "./binding.js";
import { type ExchangeOwner, NativeExchange } from "./exchange.js";
import { ExchangeTable } from "./exchange-table.js";
import { ResponseBatch } from "./response-batch.js";
import { type Rejection, readTape, requestConnectionId, requestHttps, type TapeSink, type TlsRecord } from "./tape.js";
import { reportWorkerReady, type WorkerAssignment, WorkerGroup } from "./workers.js";

/** Milliseconds workers get to exit after the server stopped, before they are terminated. */
const WORKER_EXIT_TIMEOUT = 5000;

/** NativeServer.stats: counters since the server started. */
export interface ServerStats {
  currentConnections: number;
  /**
   * Of the open connections, the HTTP/1.1 keep-alive ones parked between requests: idle
   * for a moment, they hold no read or write buffers (docs/limits.md, keepAliveTimeout).
   * NodeServer reports 0: node keeps every connection's buffers.
   */
  idleConnections: number;
  totalConnections: number;
  totalRequests: number;
  /** Refusals by reason code, e.g. `{ BAD_REQUEST_TE_CL: 2 }`; reasons never seen are absent. */
  rejections: Record<string, number>;
}

export interface NativeServerOptions {
  /** Request and response limits; see docs/limits.md. */
  limits?: LimitsOptions;
  /** Certificates for the https endpoints; see docs/tls.md. */
  tls?: TlsOptions;
  /** Endpoints with options, listened on after the addresses in the server-addresses feature. */
  endpoints?: EndpointOptions[];
  /** Milliseconds in-flight requests get to finish on stop(). Default 30000. */
  shutdownTimeout?: number;
  /** Adds `Server: Peregrine` to responses. Default true. */
  addServerHeader?: boolean;
  logger?: Logger;
  /**
   * Serve the requests in `count` worker threads, each running `entry` (the app's
   * module), behind this server's one listener. docs/options.md, `workers`.
   */
  workers?: { count: number; entry: string };
  /** On a worker thread started by `workers`: attach to the listener's pool. */
  attach?: WorkerAssignment;
}

/**
 * The default server: a Rust core (hyper on tokio) owns the sockets and the HTTP
 * framing and hands requests over in batches. See ARCHITECTURE.md for the request flow.
 */
export class NativeServer implements IServer, TapeSink, ExchangeOwner {
  readonly features: IFeatureCollection = new FeatureCollection();
  readonly logger: Logger;
  readonly #addresses: string[] = [];
  readonly #limits: ServerLimits;
  readonly exchangeLimits: ExchangeLimits;
  readonly #shutdownTimeout: number;
  readonly #addServerHeader: boolean;
  readonly #exchanges = new ExchangeTable<NativeExchange>();
  #tls: NativeTlsOptions | undefined;
  readonly #endpoints: EndpointOptions[];
  /** TLS details by connection id, from the first request until the connection closes. */
  readonly #tlsConnections = new Map<number, NativeTlsConnection>();
  #handle: NativeServerHandle | undefined;
  readonly responses = new ResponseBatch((records, bodies) => this.#sendResponses(records, bodies));
  #application: IHttpApplication<unknown> | undefined;
  #stopped: { promise: Promise<void>; resolve: () => void } | undefined;
  readonly #workers: { count: number; entry: string } | undefined;
  readonly #attach: WorkerAssignment | undefined;
  #workerGroup: WorkerGroup | undefined;
  readonly #ended: { promise: Promise<void>; resolve: () => void };
  #hasEnded = false;

  constructor(options: NativeServerOptions = {}) {
    this.#workers = options.workers;
    this.#attach = options.attach;
    let resolveEnded!: () => void;
    const ended = new Promise<void>((resolve) => {
      resolveEnded = resolve;
    });
    this.#ended = { promise: ended, resolve: resolveEnded };
    this.#limits = resolveLimits(options.limits);
    this.exchangeLimits = {
      maxRequestBodySize: this.#limits.maxRequestBodySize,
      minRequestBodyDataRate: null,
      minResponseDataRate: null,
    };
    this.#shutdownTimeout = resolveShutdownTimeout(options.shutdownTimeout);
    this.#addServerHeader = options.addServerHeader ?? true;
    this.#tls = options.tls === undefined ? undefined : toNativeTlsOptions(options.tls);
    this.#endpoints = options.endpoints === undefined ? [] : validateEndpoints(options.endpoints);
    this.logger = options.logger ?? createConsoleLogger();
    this.features.set(IServerAddressesFeature, { addresses: this.#addresses });
  }

  get handle(): NativeServerHandle {
    if (this.#handle === undefined) throw new Error("the native server has not started");
    return this.#handle;
  }

  /**
   * Counters since start: open and parked connections, connections and requests so
   * far, and refusals by reason code (docs/limits.md, docs/security.md).
   */
  get stats(): ServerStats {
    const native = this.#handle?.stats();
    return {
      currentConnections: native?.currentConnections ?? 0,
      idleConnections: native?.idleConnections ?? 0,
      totalConnections: native?.totalConnections ?? 0,
      totalRequests: native?.totalRequests ?? 0,
      rejections: Object.fromEntries((native?.rejections ?? []).map((r) => [r.reason, r.count])),
    };
  }

  /** Requests currently in flight. */
  get inFlight(): number {
    return this.#exchanges.size;
  }

  /**
   * Resolves once the server has stopped, whoever stopped it: on a worker thread,
   * the main thread stopping the listener ends the worker's server too.
   */
  get ended(): Promise<void> {
    return this.#ended.promise;
  }

  async start<TContext>(application: IHttpApplication<TContext>): Promise<void> {
    if (this.#handle !== undefined) throw new Error("the native server was already started");
    const binding = loadNativeBinding();
    if (this.#attach !== undefined) {
      const { token, index } = this.#attach;
      try {
        this.#handle = binding.NativeServer.attach(token, index, () => this.#onWake());
      } catch (error) {
        throw fromNativeError(error);
      }
      this.#application = application as IHttpApplication<unknown>;
      reportWorkerReady();
      return;
    }
    const urls = [...this.#addresses, ...this.#endpoints.map((e) => e.url)];
    const protocols = [
      ...this.#addresses.map(() => "http1AndHttp2"),
      ...this.#endpoints.map((e) => e.protocols ?? "http1AndHttp2"),
    ];
    const endpointTls = [
      ...this.#addresses.map(() => null),
      ...this.#endpoints.map((e) => (e.tls === undefined ? null : toNativeTlsOptions(e.tls))),
    ];
    const h2 = this.#limits.http2;
    let handle: NativeServerHandle;
    let bound: string[];
    try {
      handle = new binding.NativeServer(
        {
          urls,
          maxRequestBodySize: this.#limits.maxRequestBodySize ?? -1,
          maxRequestBufferSize: this.#limits.maxRequestBufferSize,
          maxResponseBufferSize: this.#limits.maxResponseBufferSize,
          maxConcurrentConnections: this.#limits.maxConcurrentConnections ?? -1,
          maxConcurrentUpgradedConnections: this.#limits.maxConcurrentUpgradedConnections ?? -1,
          maxRequestLineSize: this.#limits.maxRequestLineSize,
          maxRequestHeaderCount: this.#limits.maxRequestHeaderCount,
          maxRequestHeadersTotalSize: this.#limits.maxRequestHeadersTotalSize,
          keepAliveTimeout: this.#limits.keepAliveTimeout,
          requestHeadersTimeout: this.#limits.requestHeadersTimeout,
          minRequestBodyDataRate: this.#limits.minRequestBodyDataRate,
          minResponseDataRate: this.#limits.minResponseDataRate,
          addServerHeader: this.#addServerHeader,
          protocols,
          http2: { ...h2, keepAlivePingDelay: h2.keepAlivePingDelay ?? -1 },
          ...(this.#tls !== undefined ? { tls: this.#tls } : {}),
          ...(endpointTls.some((t) => t !== null) ? { endpointTls } : {}),
          ...(this.#workers !== undefined ? { workers: this.#workers.count } : {}),
        },
        () => this.#onWake(),
      );
      bound = handle.listen();
    } catch (error) {
      throw fromNativeError(error);
    }
    this.#handle = handle;
    this.#application = application as IHttpApplication<unknown>;
    this.#addresses.splice(0, this.#addresses.length, ...bound);
    if (this.#workers !== undefined && handle.poolToken !== null) {
      const group = new WorkerGroup(this.#workers.entry, handle.poolToken, this.#workers.count, this.logger);
      this.#workerGroup = group;
      try {
        await group.start();
      } catch (error) {
        await this.stop();
        throw error;
      }
    }
  }

  /**
   * Swaps the certificate set: connections opened from now on use `tls`; open ones
   * keep theirs. Fails, keeping the current set, when a certificate or key is bad.
   */
  reloadTls(tls: TlsOptions): void {
    const native = toNativeTlsOptions(tls);
    if (this.#handle === undefined) {
      this.#tls = native;
      return;
    }
    try {
      this.#handle.reloadTls(native);
    } catch (error) {
      throw fromNativeError(error);
    }
    this.#tls = native;
  }

  stop(signal?: AbortSignal): Promise<void> {
    const handle = this.#handle;
    if (handle === undefined || (this.#hasEnded && this.#stopped === undefined)) return Promise.resolve();
    if (this.#stopped === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.#stopped = { promise, resolve };
      const timeout = signal?.aborted ? 0 : this.#shutdownTimeout;
      handle.stop(timeout);
      signal?.addEventListener("abort", () => handle.stop(0), { once: true });
    }
    const group = this.#workerGroup;
    // Workers exit once their servers have ended with this one.
    return group === undefined
      ? this.#stopped.promise
      : this.#stopped.promise.then(() => group.stop(WORKER_EXIT_TIMEOUT));
  }

  #onWake(): void {
    // Runs from the threadsafe function: an exception here would be uncaught.
    try {
      const batch = this.#handle?.drain();
      if (batch) readTape(batch, this);
    } catch (error) {
      this.logger.error({ err: error }, "The native server failed to process a batch");
    }
  }

  /** Returns whether the core took the whole batch (see SendBatch). */
  #sendResponses(records: Buffer, bodies: (string | Uint8Array | undefined)[]): boolean {
    const handle = this.#handle;
    if (handle === undefined) return false;
    try {
      handle.respondBatch(records, bodies);
      return true;
    } catch (error) {
      this.logger.error({ err: error }, "The native server failed to take a batch of responses");
      return false;
    }
  }

  release(id: number): void {
    this.#exchanges.delete(id);
  }

  // ---- TapeSink ----

  request(id: number, tape: Buffer, view: DataView, at: number): void {
    const application = this.#application as IHttpApplication<unknown>;
    const tls = requestHttps(tape, at) ? this.#tlsConnections.get(requestConnectionId(view, at)) : undefined;
    const exchange = new NativeExchange(this, id, tape, view, at, tls);
    this.#exchanges.set(exchange);
    dispatch(application, exchange, this.logger);
  }

  data(id: number, chunk: Buffer): void {
    this.#exchanges.get(id)?.requestBody.onData(chunk);
  }

  trailers(id: number, headers: [string, string][]): void {
    this.#exchanges.get(id)?.onTrailers(headers);
  }

  tls(connectionId: number, info: TlsRecord): void {
    this.#tlsConnections.set(connectionId, new NativeTlsConnection(info));
  }

  rejected(rejection: Rejection): void {
    // One structured event per refusal; its reason code is stable and searchable.
    this.logger.warn(
      {
        reason: rejection.reason,
        status: rejection.status,
        connectionId: connectionIdString(rejection.connectionId),
        remoteAddress: rejection.remoteAddress,
        remotePort: rejection.remotePort,
      },
      "Request rejected",
    );
  }

  refused(id: number, code: string, message: string): void {
    // The exchange is over in JS already: its whole response went out in a batch,
    // which the core answers on its own threads, after respondBatch has returned.
    this.logger.error(
      { code, exchangeId: id, detail: message },
      "The native server refused a response; its request was aborted",
    );
  }

  connectionClosed(connectionId: number): void {
    this.#tlsConnections.delete(connectionId);
  }

  end(id: number): void {
    this.#exchanges.get(id)?.requestBody.onEnd();
  }

  bodyError(id: number, code: string, message: string): void {
    this.#exchanges.get(id)?.requestBody.onError(code, message);
  }

  writeReady(id: number): void {
    this.#exchanges.get(id)?.onWriteReady();
  }

  aborted(id: number): void {
    this.#exchanges.get(id)?.clientGone();
  }

  stopped(): void {
    this.responses.flush();
    for (const exchange of this.#exchanges.drain()) exchange.clientGone();
    this.#tlsConnections.clear();
    this.#handle?.close();
    this.#stopped?.resolve();
    this.#hasEnded = true;
    this.#ended.resolve();
  }
}

/** ITlsConnectionFeature over a tape TLS record; one per connection. */
class NativeTlsConnection implements ITlsConnectionFeature {
  readonly protocol: string;
  readonly cipherSuite: string;
  readonly alpnProtocol: string | undefined;
  readonly serverName: string | undefined;
  readonly #der: Buffer;
  #pem: string | undefined;

  constructor(record: TlsRecord) {
    this.protocol = record.protocol;
    this.cipherSuite = record.cipherSuite;
    this.alpnProtocol = record.alpnProtocol;
    this.serverName = record.serverName;
    this.#der = record.clientCertificate;
  }

  get clientCertificate(): string | undefined {
    if (this.#der.length === 0) return undefined;
    if (this.#pem === undefined) {
      const base64 = this.#der.toString("base64").replace(/.{64}/g, "$&\n");
      this.#pem = `-----BEGIN CERTIFICATE-----\n${base64}${base64.endsWith("\n") ? "" : "\n"}-----END CERTIFICATE-----\n`;
    }
    return this.#pem;
  }
}
