import type { IncomingMessage, ServerResponse } from "node:http";
import { type Http2ServerResponse, type Http2Session, constants as http2Constants } from "node:http2";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import { ErrorCodes, PeregrineError } from "../../errors.js";
import {
  type BodyChunk,
  type FeatureKey,
  type IHttpConnectionFeature,
  IHttpRequestTrailersFeature,
  IHttpResetFeature,
  IHttpUpgradeFeature,
  IStreamIdFeature,
  ITlsConnectionFeature,
} from "../../features/index.js";
import type { HeaderDictionary } from "../../http/headers.js";
import type { Logger } from "../../logging.js";
import type { ServerLimits } from "../../server/limits.js";
import { connectionIdString, ServerExchange } from "../exchange.js";
import { RequestBody } from "../request-body.js";
import { RequestTrailers } from "../request-trailers.js";
import { declaredLength, hasNoBody, type NodeRequest, NodeRequestFeature, readableBodyReader } from "./node-request.js";
import { NodeTlsConnection } from "./node-tls.js";
import {
  isNodeUpgradeRequest,
  type NodeUpgradeContext,
  switchingProtocolsHead,
  type UpgradeCounter,
} from "./node-upgrade.js";

export type NodeResponse = ServerResponse | Http2ServerResponse;

/** Headers that describe an HTTP/1.1 connection; HTTP/2 forbids them (node throws on them). */
const CONNECTION_HEADERS = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);

/**
 * A connection (an HTTP/1.x socket or an HTTP/2 session): the connection feature, its
 * TLS details, and what graceful stop needs to know (requests in flight).
 */
export class NodeConnection implements IHttpConnectionFeature {
  readonly connectionId: string;
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  /** Requests seen, for trace identifiers. */
  requests = 0;
  /** Requests in flight. */
  active = 0;
  readonly #socket: Socket;
  readonly #session: Http2Session | undefined;
  #tls: NodeTlsConnection | undefined;
  #closing = false;
  #idle: (() => void)[] | undefined;

  constructor(id: number, socket: Socket, session: Http2Session | undefined) {
    this.connectionId = connectionIdString(id);
    this.#socket = socket;
    this.#session = session;
    this.remoteAddress = socket.remoteAddress ?? "";
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = socket.localAddress ?? "";
    this.localPort = socket.localPort ?? 0;
  }

  get tls(): NodeTlsConnection | undefined {
    if (this.#tls === undefined && (this.#socket as TLSSocket).encrypted === true) {
      this.#tls = new NodeTlsConnection(this.#socket as TLSSocket);
    }
    return this.#tls;
  }

  get isHttp2(): boolean {
    return this.#session !== undefined;
  }

  /** Graceful stop: HTTP/2 sends GOAWAY and lets open streams finish; HTTP/1.1 closes once idle. */
  closeWhenIdle(): void {
    this.#closing = true;
    if (this.#session !== undefined) {
      if (!this.#session.closed && !this.#session.destroyed) this.#session.close();
    } else if (this.active === 0) this.#socket.end();
  }

  exchangeEnded(): void {
    this.active--;
    if (this.active > 0) return;
    const idle = this.#idle;
    this.#idle = undefined;
    if (idle !== undefined) for (const callback of idle) callback();
    if (this.#closing && this.#session === undefined) this.#socket.end();
  }

  /** Runs `callback` once no request is in flight on this connection. */
  /** The latest request on this connection; a parse error after it concerns a pipelined one. */
  lastRequest: { readonly complete: boolean } | undefined;

  get lastRequestComplete(): boolean {
    return this.lastRequest === undefined || this.lastRequest.complete;
  }

  whenIdle(callback: () => void): void {
    if (this.active === 0) callback();
    else (this.#idle ??= []).push(callback);
  }

  destroy(): void {
    if (this.#session !== undefined) this.#session.destroy();
    else this.#socket.destroy();
  }
}

/** What an exchange needs from the NodeServer that owns it. */
export interface NodeExchangeOwner extends UpgradeCounter {
  readonly logger: Logger;
  readonly addServerHeader: boolean;
  readonly limits: ServerLimits;
  /** Logs and counts a refusal by its reason code (docs/limits.md). */
  rejected(reason: string, status: number, connection: NodeConnection | undefined): void;
  /** True once stop() began: HTTP/1.1 responses ask the client to close the connection. */
  readonly stopping: boolean;
}

function isHttp2(res: NodeResponse): res is Http2ServerResponse {
  return "stream" in res;
}

/** node's `rawTrailers` (name, value, name, value, ...) as pairs. */
function trailerPairs(raw: string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i] as string, raw[i + 1] as string]);
  return pairs;
}

/**
 * One exchange on the NodeServer: the features over a node:http (or node:http2
 * compatibility API) request and response. The state machine is ServerExchange's; this
 * class maps its hooks onto `res.writeHead`, `write`, `end`, `drain` and `close`.
 */
export class NodeExchange extends ServerExchange implements IHttpResetFeature, IHttpUpgradeFeature {
  readonly request: NodeRequestFeature;
  readonly requestBody: RequestBody;
  readonly req: NodeRequest;
  readonly res: NodeResponse;
  protected get sendsTrailers(): boolean {
    return true;
  }
  readonly #owner: NodeExchangeOwner;
  readonly #connection: NodeConnection;
  readonly #requestNumber: number;
  readonly #expectContinue: boolean;
  readonly #http2: boolean;
  #requestTrailers: RequestTrailers | undefined;
  #closeConnection = false;
  #wroteBody = false;
  /** Set for a request node:http gave the 'upgrade' listener. */
  readonly #upgrade: NodeUpgradeContext | undefined;
  #upgrading = false;
  #upgraded = false;

  constructor(
    owner: NodeExchangeOwner,
    req: NodeRequest,
    res: NodeResponse,
    connection: NodeConnection,
    options: { https: boolean; expectContinue: boolean; upgrade?: NodeUpgradeContext },
  ) {
    super(owner.logger, owner.limits);
    this.#owner = owner;
    this.req = req;
    this.res = res;
    this.#http2 = isHttp2(res);
    this.#connection = connection;
    connection.active++;
    connection.lastRequest = req;
    this.#requestNumber = ++connection.requests;
    this.#expectContinue = options.expectContinue;
    this.#upgrade = options.upgrade;
    if (options.upgrade !== undefined) {
      // node:http has let go of the socket: answered without upgrading, it closes.
      const socket = options.upgrade.socket;
      res.once("finish", () => {
        if (!this.#upgraded) socket.end();
      });
    }
    this.requestBody = new RequestBody(this, hasNoBody(req) ? undefined : readableBodyReader(req), declaredLength(req));
    this.request = new NodeRequestFeature(req, options.https, this.requestBody);
    // Without a listener, a request that breaks off would emit an uncaught 'error'.
    req.on("error", () => {});
    res.on("drain", () => this.onDrain());
    res.on("close", () => {
      // Closed before the app completed the response: the client went away (a reset
      // HTTP/2 stream even reports itself finished). After completion this does nothing.
      this.onAborted();
      this.onClosed();
      connection.exchangeEnded();
    });
  }

  protected override resolve<T>(key: FeatureKey<T>): T | undefined {
    const found = super.resolve(key);
    if (found !== undefined) return found;
    switch (key as FeatureKey<unknown>) {
      case ITlsConnectionFeature:
        return this.#connection.tls as T | undefined;
      case IHttpRequestTrailersFeature:
        this.#requestTrailers ??= new RequestTrailers(
          () => this.req.complete,
          () => trailerPairs(this.req.rawTrailers),
        );
        return this.#requestTrailers as T;
      case IStreamIdFeature:
        return this.#http2
          ? ({ streamId: (this.res as Http2ServerResponse).stream.id ?? 0 } satisfies IStreamIdFeature as T)
          : undefined;
      case IHttpResetFeature:
        return this.#http2 ? (this as unknown as T) : undefined;
      case IHttpUpgradeFeature:
        return this.#http2 ? undefined : (this as unknown as T);
      default:
        return undefined;
    }
  }

  protected connection(): IHttpConnectionFeature {
    return this.#connection;
  }

  protected makeTraceIdentifier(): string {
    return `${this.#connection.connectionId}:${this.#requestNumber.toString(16).padStart(8, "0").toUpperCase()}`;
  }

  // ---- IHttpResetFeature ----

  reset(errorCode: number): void {
    if (!Number.isInteger(errorCode) || errorCode < 0 || errorCode > 0xffff_ffff) {
      throw new PeregrineError(
        ErrorCodes.INVALID_OPTION,
        `reset(${errorCode}): the error code must be a whole number from 0 to 2^32-1`,
      );
    }
    if (this.isCompleted) return;
    this.onAborted();
    (this.res as Http2ServerResponse).stream.close(errorCode);
  }

  // ---- RequestBodyOwner ----

  onBodyReadStarted(): void {
    // hyper's behaviour: `100 Continue` goes out when the app first reads the body.
    if (this.#expectContinue && !this.hasStarted) this.res.writeContinue();
  }

  onBodyRejected(): void {
    // The rest of the body is unread: the connection cannot carry another request.
    this.#closeConnection = true;
  }

  // ---- transport hooks ----

  /** HTTP/2: the head goes through the compatibility API's setHeader. */
  #applyHttp2Head(): void {
    const res = this.res;
    res.statusCode = this.statusCode;
    if (this.hasHeaders) {
      for (const [name, value] of Object.entries(this.headers.toJSON())) {
        // HTTP/2 forbids connection-specific fields; node would throw on them.
        if (!CONNECTION_HEADERS.has(name)) res.setHeader(name, value);
      }
    }
    if (this.#owner.addServerHeader && !res.hasHeader("server")) res.setHeader("server", "Peregrine");
  }

  /**
   * HTTP/1.x: the head as one flat [name, value, ...] list for writeHead, which keeps
   * repeated fields apart and skips a setHeader call per field.
   */
  #http1Head(contentLength: number | undefined): string[] {
    const fields: string[] = [];
    let hasServer = false;
    let hasLength = false;
    if (this.hasHeaders) {
      for (const [name, value] of this.headers) {
        fields.push(name, value);
        if (name === "server") hasServer = true;
        else if (name === "content-length") hasLength = true;
      }
    }
    if (this.#owner.addServerHeader && !hasServer) fields.push("server", "Peregrine");
    if (contentLength !== undefined && !hasLength) fields.push("content-length", String(contentLength));
    const res = this.res as ServerResponse;
    if (this.#closeConnection || this.#owner.stopping) res.shouldKeepAlive = false;
    return fields;
  }

  protected sendHead(): void {
    const res = this.res as ServerResponse;
    if (this.#upgrading && this.#upgrade !== undefined) {
      const fields = [...(this.hasHeaders ? this.headers : [])] as [string, string][];
      this.#upgrade.socket.write(switchingProtocolsHead(fields, this.req.headers.upgrade ?? ""));
      this.#upgraded = true;
      return;
    }
    if (this.#http2) {
      this.#applyHttp2Head();
      res.writeHead(this.statusCode);
    } else {
      const fields = this.#http1Head(undefined);
      if (this.reasonPhrase !== undefined) res.writeHead(this.statusCode, this.reasonPhrase, fields);
      else res.writeHead(this.statusCode, fields);
    }
    // An explicit start() sends the head at once; a write() right after sends it with the first chunk.
    queueMicrotask(() => {
      if (!this.#wroteBody && !res.writableEnded && !res.destroyed) res.flushHeaders();
    });
  }

  protected sendWhole(chunk: BodyChunk | undefined): void {
    const res = this.res as ServerResponse;
    const status = this.statusCode;
    // A whole response says how long it is, as from the native core. node would leave
    // Content-Length out for HEAD and for HTTP/1.0 (ending the body by closing instead).
    const length =
      status < 200 || status === 204 || status === 304
        ? undefined
        : chunk === undefined
          ? 0
          : typeof chunk === "string"
            ? Buffer.byteLength(chunk)
            : chunk.byteLength;
    if (this.#http2) {
      this.#applyHttp2Head();
      if (length !== undefined && !res.hasHeader("content-length")) res.setHeader("content-length", length);
    } else {
      const fields = this.#http1Head(length);
      if (this.reasonPhrase !== undefined) res.writeHead(status, this.reasonPhrase, fields);
      else res.writeHead(status, fields);
    }
    if (chunk === undefined) res.end();
    else res.end(chunk);
  }

  protected sendChunk(chunk: BodyChunk): boolean {
    this.#wroteBody = true;
    if (this.#upgraded) return this.#upgradedWrite(chunk);
    if (this.res.destroyed) return true;
    return (this.res as ServerResponse).write(chunk);
  }

  protected sendEnd(trailers: HeaderDictionary | undefined): void {
    if (this.#upgraded) {
      this.#upgrade?.socket.end();
      return;
    }
    const res = this.res;
    if (trailers !== undefined) {
      if (this.#http2) (res as Http2ServerResponse).addTrailers(trailers.toJSON());
      else (res as ServerResponse).addTrailers([...trailers]);
    }
    res.end();
  }

  #upgradedWrite(chunk: BodyChunk): boolean {
    const socket = this.#upgrade?.socket;
    if (socket === undefined || socket.destroyed) return true;
    if (socket.write(chunk)) return true;
    socket.once("drain", () => this.onDrain());
    return false;
  }

  // ---- IHttpUpgradeFeature ----

  get isUpgradableRequest(): boolean {
    return this.#upgrade !== undefined && isNodeUpgradeRequest(this.req as IncomingMessage);
  }

  async upgrade(): Promise<Duplex> {
    const context = this.#upgrade;
    if (context === undefined || !this.isUpgradableRequest) {
      throw new PeregrineError(
        ErrorCodes.NOT_UPGRADABLE,
        "upgrade(): this request cannot be upgraded; only an HTTP/1.1 request with Connection: upgrade, an Upgrade header and no body can (check isUpgradableRequest)",
      );
    }
    if (this.hasStarted) {
      throw new PeregrineError(ErrorCodes.RESPONSE_STARTED, "upgrade(): the response has already started");
    }
    if (!this.#owner.tryUpgrade(context.socket)) {
      this.#owner.rejected("MAX_CONCURRENT_UPGRADED_CONNECTIONS", 0, this.#connection);
      throw new PeregrineError(
        ErrorCodes.UPGRADE_LIMIT,
        `upgrade refused: ${this.#owner.limits.maxConcurrentUpgradedConnections} upgraded connections are open, the most limits.maxConcurrentUpgradedConnections allows; answer the request without upgrading`,
      );
    }
    this.#upgrading = true;
    try {
      await this.start();
    } finally {
      this.#upgrading = false;
    }
    if (context.head.length > 0) context.socket.unshift(context.head);
    return context.socket;
  }

  protected queuedBytes(): number {
    return this.res.writableLength;
  }

  protected override onResponseTooSlow(): void {
    this.#owner.rejected("MIN_RESPONSE_DATA_RATE", 0, this.#connection);
  }

  protected destroy(): void {
    if (this.#upgraded) {
      this.#upgrade?.socket.destroy();
      return;
    }
    // HTTP/2: RST_STREAM(INTERNAL_ERROR), as the native core sends; HTTP/1.1: close the connection.
    if (this.#http2) (this.res as Http2ServerResponse).stream.close(http2Constants.NGHTTP2_INTERNAL_ERROR);
    else this.res.destroy();
  }
}
