import type { ServerResponse } from "node:http";
import type { Http2ServerResponse } from "node:http2";
import type { BodyChunk, IHttpConnectionFeature } from "../../features/index.js";
import type { HeaderDictionary } from "../../http/headers.js";
import type { Logger } from "../../logging.js";
import { connectionIdString, ServerExchange } from "../exchange.js";
import { RequestBody } from "../request-body.js";
import { declaredLength, hasNoBody, type NodeRequest, NodeRequestFeature, readableBodyReader } from "./node-request.js";

export type NodeResponse = ServerResponse | Http2ServerResponse;

/** What NodeServer keeps per connection: made on accept, so it outlives the socket's addresses. */
export class NodeConnection implements IHttpConnectionFeature {
  readonly connectionId: string;
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  requests = 0;
  constructor(
    readonly id: number,
    socket: { remoteAddress?: string | undefined; remotePort?: number | undefined; localAddress?: string | undefined; localPort?: number | undefined },
  ) {
    this.connectionId = connectionIdString(id);
    this.remoteAddress = socket.remoteAddress ?? "";
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = socket.localAddress ?? "";
    this.localPort = socket.localPort ?? 0;
  }
}

/** What an exchange needs from the NodeServer that owns it. */
export interface NodeExchangeOwner {
  readonly logger: Logger;
  readonly addServerHeader: boolean;
  /** True once stop() began: responses ask the client to close the connection. */
  readonly stopping: boolean;
  /** The exchange is over on the transport. */
  release(exchange: NodeExchange): void;
}

function isHttp2(res: NodeResponse): res is Http2ServerResponse {
  return "stream" in res;
}

/**
 * One exchange on the NodeServer: the features over a node:http (or node:http2
 * compatibility API) request and response. The state machine is ServerExchange's; this
 * class maps its hooks onto `res.writeHead`, `write`, `end`, `drain` and `close`.
 */
export class NodeExchange extends ServerExchange {
  readonly request: NodeRequestFeature;
  readonly requestBody: RequestBody;
  readonly req: NodeRequest;
  readonly res: NodeResponse;
  readonly #owner: NodeExchangeOwner;
  readonly #connection: NodeConnection;
  readonly #requestNumber: number;
  readonly #expectContinue: boolean;
  #closeConnection = false;
  #wroteBody = false;

  constructor(
    owner: NodeExchangeOwner,
    req: NodeRequest,
    res: NodeResponse,
    connection: NodeConnection,
    options: { https: boolean; expectContinue: boolean; maxRequestBodySize: number | null },
  ) {
    super(owner.logger, options.maxRequestBodySize);
    this.#owner = owner;
    this.req = req;
    this.res = res;
    this.#connection = connection;
    this.#requestNumber = ++connection.requests;
    this.#expectContinue = options.expectContinue;
    this.requestBody = new RequestBody(this, hasNoBody(req) ? undefined : readableBodyReader(req), declaredLength(req));
    this.request = new NodeRequestFeature(req, options.https, this.requestBody);
    // Without a listener, a request that breaks off would emit an uncaught 'error'.
    req.on("error", () => {});
    res.on("drain", () => this.onDrain());
    res.on("close", () => {
      if (!res.writableFinished) this.onAborted();
      this.onClosed();
      owner.release(this);
    });
  }

  protected connection(): IHttpConnectionFeature {
    return this.#connection;
  }

  protected makeTraceIdentifier(): string {
    return `${this.#connection.connectionId}:${this.#requestNumber.toString(16).padStart(8, "0").toUpperCase()}`;
  }

  // ---- RequestBodyOwner ----

  onBodyReadStarted(): void {
    // hyper's behaviour: `100 Continue` goes out when the app first reads the body.
    if (this.#expectContinue && !this.hasStarted) this.res.writeContinue();
  }

  onBodyTooLarge(): void {
    // The rest of the body is unread: the connection cannot carry another request.
    this.#closeConnection = true;
  }

  // ---- transport hooks ----

  #applyHead(): void {
    const res = this.res;
    res.statusCode = this.statusCode;
    const h2 = isHttp2(res);
    // HTTP/2 has no reason phrases (node warns when one is set).
    if (!h2 && this.reasonPhrase !== undefined) res.statusMessage = this.reasonPhrase;
    if (this.hasHeaders) {
      for (const [name, value] of Object.entries(this.headers.toJSON())) res.setHeader(name, value);
    }
    if (this.#owner.addServerHeader && !res.hasHeader("server")) res.setHeader("server", "Peregrine");
    if (!h2 && (this.#closeConnection || this.#owner.stopping)) (res as ServerResponse).shouldKeepAlive = false;
  }

  protected sendHead(): void {
    this.#applyHead();
    const res = this.res;
    res.writeHead(this.statusCode);
    // An explicit start() sends the head at once; a write() right after sends it with the first chunk.
    queueMicrotask(() => {
      if (!this.#wroteBody && !res.writableEnded && !res.destroyed) (res as ServerResponse).flushHeaders();
    });
  }

  protected sendWhole(chunk: BodyChunk | undefined): void {
    this.#applyHead();
    const res = this.res;
    // node:http sends no Content-Length for HEAD; the native core does, as the GET would.
    if (chunk !== undefined && this.request.method === "HEAD" && !res.hasHeader("content-length")) {
      res.setHeader("content-length", typeof chunk === "string" ? Buffer.byteLength(chunk) : chunk.byteLength);
    }
    if (chunk === undefined) res.end();
    else res.end(chunk);
  }

  protected sendChunk(chunk: BodyChunk): boolean {
    this.#wroteBody = true;
    if (this.res.destroyed) return true;
    return (this.res as ServerResponse).write(chunk);
  }

  protected sendEnd(trailers: HeaderDictionary | undefined): void {
    const res = this.res;
    if (trailers !== undefined) res.addTrailers(trailers.toJSON());
    res.end();
  }

  protected destroy(): void {
    this.res.destroy();
  }
}
