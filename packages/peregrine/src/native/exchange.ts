import { ErrorCodes, PeregrineError } from "../errors.js";
import {
  type BodyChunk,
  IHttpConnectionFeature as ConnectionKey,
  FeatureCollection,
  type FeatureKey,
  IHttpRequestIdentifierFeature as IdentifierKey,
  type IHttpConnectionFeature,
  type IHttpMaxRequestBodySizeFeature,
  type IHttpRequestIdentifierFeature,
  type IHttpRequestLifetimeFeature,
  type IHttpRequestTrailersFeature,
  type IHttpResetFeature,
  type IHttpResponseBodyFeature,
  type IHttpResponseFeature,
  type IHttpResponseTrailersFeature,
  type IStreamIdFeature,
  type ITlsConnectionFeature,
  IHttpRequestLifetimeFeature as LifetimeKey,
  IHttpMaxRequestBodySizeFeature as MaxBodyKey,
  IHttpRequestFeature as RequestKey,
  IHttpRequestTrailersFeature as RequestTrailersKey,
  IHttpResetFeature as ResetKey,
  IHttpResponseBodyFeature as ResponseBodyKey,
  IHttpResponseFeature as ResponseKey,
  IHttpResponseTrailersFeature as ResponseTrailersKey,
  IStreamIdFeature as StreamIdKey,
  ITlsConnectionFeature as TlsKey,
} from "../features/index.js";
import { HeaderDictionary } from "../http/headers.js";
import type { Logger } from "../logging.js";
import type { NativeServerHandle } from "./binding.js";
import { NativeRequestBody, NativeRequestFeature } from "./request-feature.js";
import type { RequestRecord } from "./tape.js";

const RESOLVED: Promise<void> = Promise.resolve();

const NOT_STARTED = 0;
const STARTED = 1;
const COMPLETED = 2;
const ABORTED = 3;

type Callback = () => void | Promise<void>;

/** What an exchange needs from the server that owns it. */
export interface ExchangeOwner {
  readonly handle: NativeServerHandle;
  readonly logger: Logger;
  /** The exchange is over: forget its id. */
  release(id: number): void;
}

export function validateStatus(code: number): number {
  if (!Number.isInteger(code) || code < 100 || code > 999) {
    throw new PeregrineError(
      ErrorCodes.INVALID_STATUS,
      `status code ${code} is invalid: use an integer from 100 to 999`,
    );
  }
  return code;
}

class NativeConnectionFeature implements IHttpConnectionFeature {
  readonly connectionId: string;
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  constructor(record: RequestRecord) {
    this.connectionId = connectionIdString(record.connectionId);
    const remote = record.remote();
    const local = record.local();
    this.remoteAddress = remote.address;
    this.remotePort = remote.port;
    this.localAddress = local.address;
    this.localPort = local.port;
  }
}

function connectionIdString(id: number): string {
  return id.toString(36).toUpperCase().padStart(8, "0");
}

/**
 * One request/response exchange on the native server. It is the feature collection,
 * and it implements the response, response-body, lifetime, identifier and
 * max-request-body-size features itself (no two of them share a member name), so a
 * request costs few objects. The request and connection features are separate objects;
 * the connection one is made only when asked for.
 */
export class NativeExchange
  extends FeatureCollection
  implements
    IHttpResponseFeature,
    IHttpResponseBodyFeature,
    IHttpRequestLifetimeFeature,
    IHttpRequestIdentifierFeature,
    IHttpMaxRequestBodySizeFeature,
    IHttpResponseTrailersFeature,
    IHttpResetFeature
{
  readonly id: number;
  readonly request: NativeRequestFeature;
  readonly requestBody: NativeRequestBody;
  readonly #owner: ExchangeOwner;
  readonly #record: RequestRecord;
  #state = NOT_STARTED;
  #statusCode = 200;
  reasonPhrase: string | undefined;
  #headers: HeaderDictionary | undefined;
  #trailers: HeaderDictionary | undefined;
  #onStarting: Callback[] | undefined;
  #onCompleted: Callback[] | undefined;
  #starting: Promise<void> | undefined;
  #drainWaiters: (() => void)[] | undefined;
  #controller: AbortController | undefined;
  #connection: NativeConnectionFeature | undefined;
  #traceIdentifier: string | undefined;
  #maxRequestBodySize: number | null;
  readonly #tls: ITlsConnectionFeature | undefined;
  #requestTrailers: NativeRequestTrailers | undefined;

  constructor(
    owner: ExchangeOwner,
    id: number,
    record: RequestRecord,
    maxRequestBodySize: number | null,
    tls: ITlsConnectionFeature | undefined,
  ) {
    super();
    this.#owner = owner;
    this.id = id;
    this.#record = record;
    this.#tls = tls;
    this.requestBody = new NativeRequestBody(this, record.bodyEmpty);
    this.request = new NativeRequestFeature(record, this.requestBody);
    this.#maxRequestBodySize = maxRequestBodySize;
  }

  protected override resolve<T>(key: FeatureKey<T>): T | undefined {
    switch (key as FeatureKey<unknown>) {
      case RequestKey:
        return this.request as T;
      case ResponseKey:
      case ResponseBodyKey:
      case LifetimeKey:
      case IdentifierKey:
      case MaxBodyKey:
        return this as unknown as T;
      case ConnectionKey:
        this.#connection ??= new NativeConnectionFeature(this.#record);
        return this.#connection as T;
      case ResponseTrailersKey:
        return this as unknown as T;
      case RequestTrailersKey:
        this.#requestTrailers ??= new NativeRequestTrailers(this.requestBody);
        return this.#requestTrailers as T;
      case TlsKey:
        return this.#tls as T | undefined;
      case ResetKey:
        return this.#record.version === 20 ? (this as unknown as T) : undefined;
      case StreamIdKey:
        return this.#record.streamId > 0
          ? ({ streamId: this.#record.streamId } satisfies IStreamIdFeature as T)
          : undefined;
      default:
        return undefined;
    }
  }

  // ---- body source ----

  readBody(): void {
    this.#owner.handle.readBody(this.id);
  }

  // ---- IHttpResponseFeature ----

  get statusCode(): number {
    return this.#statusCode;
  }
  set statusCode(value: number) {
    if (this.#state !== NOT_STARTED) {
      throw new PeregrineError(
        ErrorCodes.RESPONSE_STARTED,
        "the status code cannot change after the response has started",
      );
    }
    this.#statusCode = validateStatus(value);
  }

  get headers(): HeaderDictionary {
    this.#headers ??= new HeaderDictionary();
    return this.#headers;
  }
  set headers(value: HeaderDictionary) {
    this.#headers = value;
  }

  // ---- IHttpResponseTrailersFeature ----

  /** Response trailers, sent after a streamed body (HTTP/2, chunked HTTP/1.1). */
  get trailers(): HeaderDictionary {
    this.#trailers ??= new HeaderDictionary();
    return this.#trailers;
  }
  set trailers(value: HeaderDictionary) {
    this.#trailers = value;
  }

  /** Request trailers from the tape; the body's end follows them. */
  onTrailers(headers: [string, string][]): void {
    this.#requestTrailers ??= new NativeRequestTrailers(this.requestBody);
    this.#requestTrailers.receive(headers);
  }

  // ---- IHttpResetFeature ----

  reset(errorCode: number): void {
    if (!Number.isInteger(errorCode) || errorCode < 0 || errorCode > 0xffff_ffff) {
      throw new PeregrineError(
        ErrorCodes.INVALID_OPTION,
        `reset(${errorCode}): the error code must be a whole number from 0 to 2^32-1`,
      );
    }
    if (this.#state === COMPLETED || this.#state === ABORTED) return;
    this.#owner.handle.reset(this.id, errorCode);
    this.onAborted();
  }

  get hasStarted(): boolean {
    return this.#state !== NOT_STARTED;
  }

  onStarting(callback: Callback): void {
    if (this.#state !== NOT_STARTED) {
      throw new PeregrineError(
        ErrorCodes.RESPONSE_STARTED,
        "onStarting cannot be registered after the response has started",
      );
    }
    (this.#onStarting ??= []).push(callback);
  }

  onCompleted(callback: Callback): void {
    (this.#onCompleted ??= []).push(callback);
  }

  // ---- IHttpResponseBodyFeature ----

  get isCompleted(): boolean {
    return this.#state === COMPLETED || this.#state === ABORTED;
  }

  start(): Promise<void> {
    if (this.#state !== NOT_STARTED) return RESOLVED;
    if (this.#onStarting !== undefined) {
      this.#starting ??= this.#runOnStarting().then(() => this.#sendHead());
      return this.#starting;
    }
    this.#sendHead();
    return RESOLVED;
  }

  write(chunk: BodyChunk): Promise<void> {
    const state = this.#state;
    if (state === STARTED) return this.#writeChunk(chunk);
    if (state === NOT_STARTED) return this.start().then(() => this.#writeChunk(chunk));
    if (state === ABORTED) return RESOLVED;
    return Promise.reject(
      new PeregrineError(ErrorCodes.RESPONSE_STARTED, "the response has completed; nothing more can be written"),
    );
  }

  flush(): Promise<void> {
    // Written chunks are handed to the core at once; there is nothing to push.
    return this.#state === NOT_STARTED ? this.start() : RESOLVED;
  }

  complete(chunk?: BodyChunk): Promise<void> {
    const state = this.#state;
    if (state === NOT_STARTED) {
      if (this.#onStarting !== undefined) {
        return this.#runOnStarting().then(() => this.#respondWhole(chunk));
      }
      this.#respondWhole(chunk);
      return RESOLVED;
    }
    if (state === STARTED) {
      if (chunk === undefined) {
        this.#finish();
        return RESOLVED;
      }
      return this.#writeChunk(chunk).then(() => this.#finish());
    }
    return RESOLVED;
  }

  /** The whole response in one native call: status, headers and body. */
  #respondWhole(chunk: BodyChunk | undefined): void {
    if (this.#state !== NOT_STARTED) {
      if (this.#state === STARTED) this.#finish();
      return;
    }
    if (this.#trailers !== undefined && this.#trailers.size > 0) {
      // Trailers need a body that ends with a trailer frame: the streamed path.
      this.#sendHead();
      if (chunk !== undefined) this.#owner.handle.write(this.id, chunk);
      this.#finish();
      return;
    }
    const headers = this.#headers;
    this.#owner.handle.respond(
      this.id,
      this.#statusCode,
      headers === undefined ? "" : headers.pack(),
      chunk,
      this.reasonPhrase,
    );
    headers?.lock();
    this.#state = COMPLETED;
    this.#done();
  }

  #sendHead(): void {
    if (this.#state !== NOT_STARTED) return;
    const headers = this.#headers;
    this.#owner.handle.startResponse(
      this.id,
      this.#statusCode,
      headers === undefined ? "" : headers.pack(),
      this.reasonPhrase,
    );
    headers?.lock();
    this.#state = STARTED;
  }

  #writeChunk(chunk: BodyChunk): Promise<void> {
    if (this.#state !== STARTED) return this.write(chunk);
    const outcome = this.#owner.handle.write(this.id, chunk);
    // 2 means the client is gone; the aborted event follows and ends the exchange.
    if (outcome !== 1) return RESOLVED;
    return new Promise((resolve) => {
      (this.#drainWaiters ??= []).push(resolve);
    });
  }

  #finish(): void {
    if (this.#state !== STARTED) return;
    this.#state = COMPLETED;
    const trailers = this.#trailers;
    this.#owner.handle.finish(this.id, trailers === undefined ? "" : trailers.pack());
    this.#done();
  }

  async #runOnStarting(): Promise<void> {
    const callbacks = this.#onStarting;
    this.#onStarting = undefined;
    if (callbacks === undefined) return;
    // Last registered runs first, as in ASP.NET Core.
    for (let i = callbacks.length - 1; i >= 0; i--) await (callbacks[i] as Callback)();
  }

  /** Write-ready from the core: writers waiting on backpressure may go on. */
  onWriteReady(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = undefined;
    if (waiters !== undefined) for (const resolve of waiters) resolve();
  }

  // ---- IHttpRequestLifetimeFeature ----

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#state === ABORTED) this.#controller.abort(abortReason());
    }
    return this.#controller.signal;
  }

  get isAborted(): boolean {
    return this.#state === ABORTED;
  }

  abort(): void {
    if (this.#state === COMPLETED || this.#state === ABORTED) return;
    this.#owner.handle.abort(this.id);
    this.onAborted();
  }

  /** The client went away, or the app aborted. */
  onAborted(): void {
    if (this.#state === ABORTED) return;
    const completed = this.#state === COMPLETED;
    this.#state = ABORTED;
    const reason = abortReason();
    this.#controller?.abort(reason);
    this.requestBody.fail(reason);
    this.onWriteReady();
    if (!completed) this.#done();
  }

  // ---- IHttpRequestIdentifierFeature ----

  get traceIdentifier(): string {
    this.#traceIdentifier ??= `${connectionIdString(this.#record.connectionId)}:${this.id.toString(16).padStart(8, "0").toUpperCase()}`;
    return this.#traceIdentifier;
  }
  set traceIdentifier(value: string) {
    this.#traceIdentifier = value;
  }

  // ---- IHttpMaxRequestBodySizeFeature ----

  get isReadOnly(): boolean {
    return this.requestBody.started;
  }

  get maxRequestBodySize(): number | null {
    return this.#maxRequestBodySize;
  }
  set maxRequestBodySize(value: number | null) {
    if (this.isReadOnly) {
      throw new PeregrineError(
        ErrorCodes.INVALID_OPTION,
        "maxRequestBodySize is read-only once the request body is being read",
      );
    }
    if (value !== null && (!Number.isInteger(value) || value < 0)) {
      throw new PeregrineError(
        ErrorCodes.INVALID_OPTION,
        `maxRequestBodySize ${value} is invalid: use a whole number of bytes >= 0, or null`,
      );
    }
    this.#owner.handle.setMaxRequestBodySize(this.id, value ?? -1);
    this.#maxRequestBodySize = value;
  }

  /** The exchange is over: release it and run onCompleted callbacks. */
  #done(): void {
    this.#owner.release(this.id);
    const callbacks = this.#onCompleted;
    if (callbacks === undefined) return;
    this.#onCompleted = undefined;
    void runCompleted(callbacks, this.#owner.logger);
  }
}

/** IHttpRequestTrailersFeature: trailers become available when the body has ended. */
class NativeRequestTrailers implements IHttpRequestTrailersFeature {
  readonly #body: NativeRequestBody;
  #trailers: HeaderDictionary | undefined;

  constructor(body: NativeRequestBody) {
    this.#body = body;
  }

  receive(headers: [string, string][]): void {
    const dictionary = new HeaderDictionary();
    for (const [name, value] of headers) dictionary.append(name, value);
    dictionary.lock();
    this.#trailers = dictionary;
  }

  get available(): boolean {
    return this.#body.complete;
  }

  get trailers(): HeaderDictionary {
    if (!this.available) {
      throw new PeregrineError(
        ErrorCodes.TRAILERS_NOT_AVAILABLE,
        "request trailers are not available until the request body has been read to the end",
      );
    }
    if (this.#trailers === undefined) {
      this.#trailers = new HeaderDictionary();
      this.#trailers.lock();
    }
    return this.#trailers;
  }
}

function abortReason(): PeregrineError {
  return new PeregrineError(ErrorCodes.REQUEST_ABORTED, "the request was aborted");
}

async function runCompleted(callbacks: Callback[], logger: Logger): Promise<void> {
  for (let i = callbacks.length - 1; i >= 0; i--) {
    try {
      await (callbacks[i] as Callback)();
    } catch (error) {
      logger.error({ err: error }, "An onCompleted callback failed");
    }
  }
}
