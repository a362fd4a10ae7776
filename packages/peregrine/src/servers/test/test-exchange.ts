import type { BodyChunk, IHttpConnectionFeature, IHttpRequestFeature } from "../../features/index.js";
import type { HeaderDictionary } from "../../http/headers.js";
import { REASON_PHRASES } from "../../http/status.js";
import { decodePath } from "../../http/target.js";
import type { Logger } from "../../logging.js";
import type { ServerLimits } from "../../server/limits.js";
import { abortReason, connectionIdString, ServerExchange } from "../exchange.js";
import { type BodyReader, RequestBody } from "../request-body.js";

/** Statuses whose responses never have a body (fetch's null body statuses). */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/** What a TestExchange needs from its server. */
export interface TestExchangeOwner {
  readonly logger: Logger;
  /** Bytes a streamed response may queue before writes wait. */
  readonly responseBufferSize: number;
  release(exchange: TestExchange): void;
}

/** The request half, as built from a fetch Request. */
export interface TestRequestInit {
  url: URL;
  method: string;
  headers: HeaderDictionary;
  /** undefined for no body. */
  body: BodyReader | undefined;
  contentLength: number | undefined;
  connectionId: number;
  requestNumber: number;
  limits: ServerLimits;
}

class TestRequestFeature implements IHttpRequestFeature {
  protocol = "HTTP/1.1";
  scheme: string;
  method: string;
  pathBase = "";
  path: string;
  queryString: string;
  rawTarget: string;
  headers: HeaderDictionary;
  body: AsyncIterable<Uint8Array>;
  constructor(init: TestRequestInit, body: RequestBody) {
    this.scheme = init.url.protocol === "https:" ? "https" : "http";
    this.method = init.method;
    this.rawTarget = init.url.pathname + init.url.search;
    this.path = decodePath(init.url.pathname);
    this.queryString = init.url.search === "" ? "" : init.url.search;
    this.headers = init.headers;
    this.body = body;
  }
}

function toBytes(chunk: BodyChunk): Uint8Array {
  // A copy: the app may reuse its buffer once write() resolves, and the client reads later.
  return typeof chunk === "string" ? Buffer.from(chunk, "utf8") : new Uint8Array(chunk);
}

/**
 * One in-memory exchange: the features are built straight from a fetch Request, and
 * the response comes back as a fetch Response whose body is a ReadableStream fed by
 * the app's writes. The stream's queue (maxResponseBufferSize bytes) is the
 * backpressure: write() waits while it is full, until the test reads.
 */
export class TestExchange extends ServerExchange {
  readonly request: TestRequestFeature;
  readonly requestBody: RequestBody;
  /** Settles with the Response once the head is sent, or rejects when the exchange dies first. */
  readonly response: Promise<Response>;
  readonly #owner: TestExchangeOwner;
  readonly #init: TestRequestInit;
  #resolve!: (response: Response) => void;
  #reject!: (error: unknown) => void;
  #settled = false;
  #controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  #discardBody = false;
  #connection: IHttpConnectionFeature | undefined;

  constructor(owner: TestExchangeOwner, init: TestRequestInit) {
    super(owner.logger, init.limits);
    this.#owner = owner;
    this.#init = init;
    this.requestBody = new RequestBody(this, init.body, init.contentLength);
    this.request = new TestRequestFeature(init, this.requestBody);
    this.response = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  /** fetch's Response has no trailers. */
  protected get sendsTrailers(): boolean {
    return false;
  }

  protected connection(): IHttpConnectionFeature {
    const port = Number(this.#init.url.port) || (this.#init.url.protocol === "https:" ? 443 : 80);
    this.#connection ??= {
      connectionId: connectionIdString(this.#init.connectionId),
      remoteAddress: "127.0.0.1",
      remotePort: 0,
      localAddress: "127.0.0.1",
      localPort: port,
    };
    return this.#connection;
  }

  protected makeTraceIdentifier(): string {
    return `${connectionIdString(this.#init.connectionId)}:${this.#init.requestNumber.toString(16).padStart(8, "0").toUpperCase()}`;
  }

  /** The client gave up (its AbortSignal fired): like a client disconnecting. */
  clientAbort(reason: unknown): void {
    if (this.isCompleted && this.#controller === undefined) return;
    this.onAborted();
    this.#fail(reason);
  }

  // ---- transport hooks ----

  #makeResponse(body: ReadableStream<Uint8Array> | null): Response {
    const status = this.statusCode;
    const headers = new Headers();
    for (const [name, value] of this.headers) headers.append(name, value);
    const statusText = this.reasonPhrase ?? REASON_PHRASES[status] ?? "";
    // fetch's Response takes 200-599 only; other statuses are set on the instance.
    const inRange = status >= 200 && status <= 599;
    let response: Response;
    try {
      response = new Response(body, { status: inRange ? status : 200, statusText, headers });
    } catch {
      response = new Response(body, { status: inRange ? status : 200, headers });
    }
    if (!inRange) {
      Object.defineProperty(response, "status", { value: status });
      Object.defineProperty(response, "ok", { value: false });
    }
    Object.defineProperty(response, "url", { value: this.#init.url.href });
    return response;
  }

  #hasNoBody(): boolean {
    return this.request.method === "HEAD" || NULL_BODY_STATUSES.has(this.statusCode);
  }

  protected sendHead(): void {
    if (this.#hasNoBody()) {
      this.#discardBody = true;
      this.#settle(this.#makeResponse(null));
      return;
    }
    const stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#controller = controller;
        },
        pull: () => this.onDrain(),
        cancel: () => {
          // The test stopped reading the body: as if the client went away.
          this.#controller = undefined;
          this.onAborted();
          this.#closed();
        },
      },
      new ByteLengthQueuingStrategy({ highWaterMark: this.#owner.responseBufferSize }),
    );
    this.#settle(this.#makeResponse(stream));
  }

  protected sendWhole(chunk: BodyChunk | undefined): void {
    const bytes = chunk === undefined ? undefined : toBytes(chunk);
    // As on the wire, a whole response says how long it is (HEAD too, as the GET would).
    if (bytes !== undefined && !this.headers.has("content-length") && !NULL_BODY_STATUSES.has(this.statusCode)) {
      this.headers.set("content-length", bytes.byteLength);
    }
    if (this.#hasNoBody() || bytes === undefined || bytes.byteLength === 0) {
      this.#settle(this.#makeResponse(this.#hasNoBody() ? null : new ReadableStream({ start: (c) => c.close() })));
    } else {
      this.#settle(
        this.#makeResponse(
          new ReadableStream({
            start: (c) => {
              c.enqueue(bytes);
              c.close();
            },
          }),
        ),
      );
    }
    this.#closed();
  }

  protected sendChunk(chunk: BodyChunk): boolean {
    const controller = this.#controller;
    if (this.#discardBody || controller === undefined) return true;
    controller.enqueue(toBytes(chunk));
    return (controller.desiredSize ?? 1) > 0;
  }

  protected sendEnd(_trailers: HeaderDictionary | undefined): void {
    // fetch's Response has no trailers; they are dropped.
    const controller = this.#controller;
    this.#controller = undefined;
    controller?.close();
    this.#closed();
  }

  protected queuedBytes(): number {
    const controller = this.#controller;
    if (controller === undefined) return 0;
    return Math.max(0, this.#owner.responseBufferSize - (controller.desiredSize ?? 0));
  }

  protected destroy(): void {
    this.#fail(new TypeError("fetch failed", { cause: abortReason() }));
  }

  #fail(reason: unknown): void {
    const controller = this.#controller;
    this.#controller = undefined;
    if (!this.#settled) {
      this.#settled = true;
      this.#reject(reason);
    } else {
      try {
        controller?.error(reason);
      } catch {
        // The stream was already closed or cancelled.
      }
    }
    this.#closed();
  }

  #settle(response: Response): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#resolve(response);
  }

  #closed(): void {
    if (this.isClosed) return;
    this.onClosed();
    this.#owner.release(this);
  }
}
