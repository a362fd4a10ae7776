import { ErrorCodes, PeregrineError } from "../errors.js";
import {
  type BodyChunk,
  FeatureCollection,
  type FeatureKey,
  IHttpConnectionFeature,
  IHttpMaxRequestBodySizeFeature,
  IHttpRequestFeature,
  IHttpRequestIdentifierFeature,
  IHttpRequestLifetimeFeature,
  IHttpResponseBodyFeature,
  IHttpResponseFeature,
  IHttpResponseTrailersFeature,
} from "../features/index.js";
import { DONE } from "../http/done.js";
import { HeaderDictionary } from "../http/headers.js";
import { validateStatus } from "../http/status.js";
import type { Logger } from "../logging.js";
import type { MinDataRate, ServerLimits } from "../server/limits.js";
import type { RequestBodyOwner } from "./request-body.js";

const NOT_STARTED = 0;
const STARTED = 1;
const COMPLETED = 2;
const ABORTED = 3;

type Callback = () => void | Promise<void>;

/** The limits an exchange starts from; servers share one object among their exchanges. */
export type ExchangeLimits = Pick<
  ServerLimits,
  "maxRequestBodySize" | "minRequestBodyDataRate" | "minResponseDataRate"
>;

/**
 * What most exchanges never touch, in one object made on first use: as fields, every
 * exchange initialized a dozen it seldom reads (bench/README.md).
 */
class SeldomState {
  reasonPhrase: string | undefined = undefined;
  trailers: HeaderDictionary | undefined = undefined;
  onStarting: Callback[] | undefined = undefined;
  onCompleted: Callback[] | undefined = undefined;
  starting: Promise<void> | undefined = undefined;
  drainWaiters: (() => void)[] | undefined = undefined;
  controller: AbortController | undefined = undefined;
  traceIdentifier: string | undefined = undefined;
  /** Set once the app changes it; until then the limits' value holds. */
  maxRequestBodySize: number | null | undefined = undefined;
}

/** What the exchange needs of a request body: whether reading began, and a way to fail it. */
export interface ExchangeBody {
  readonly started: boolean;
  fail(error: Error): void;
}

/** The form connection ids take in trace identifiers, shared with the native server. */
export function connectionIdString(id: number): string {
  return id.toString(36).toUpperCase().padStart(8, "0");
}

export function abortReason(): PeregrineError {
  return new PeregrineError(ErrorCodes.REQUEST_ABORTED, "the request was aborted");
}

/**
 * One request/response exchange on a server written in TypeScript (NodeServer,
 * TestServer). Like the native exchange, it is the feature collection and implements
 * the response, response-body, lifetime, identifier and max-request-body-size features
 * itself. The state machine (headers lock when the response starts, onStarting before
 * the head, onCompleted once it is over, backpressure, aborts) lives here once;
 * subclasses only move bytes through the `send*` hooks and report transport events
 * through `onDrain`, `onAborted` and `onClosed`.
 */
export abstract class ServerExchange
  extends FeatureCollection
  implements
    IHttpResponseFeature,
    IHttpResponseBodyFeature,
    IHttpRequestLifetimeFeature,
    IHttpRequestIdentifierFeature,
    IHttpMaxRequestBodySizeFeature,
    IHttpResponseTrailersFeature,
    RequestBodyOwner
{
  abstract readonly request: IHttpRequestFeature;
  abstract readonly requestBody: ExchangeBody;
  private readonly _logger: Logger;
  private readonly _limits: ExchangeLimits;
  private _state = NOT_STARTED;
  private _statusCode = 200;
  private _headers: HeaderDictionary | undefined = undefined;
  private _seldom: SeldomState | undefined = undefined;
  private _closed = false;

  constructor(logger: Logger, limits: ExchangeLimits) {
    super();
    this._logger = logger;
    this._limits = limits;
  }

  private _seldomState(): SeldomState {
    this._seldom ??= new SeldomState();
    return this._seldom;
  }

  /** limits.minRequestBodyDataRate, or null for no check. */
  get minRequestBodyDataRate(): MinDataRate | null {
    return this._limits.minRequestBodyDataRate;
  }

  // ---- what subclasses provide ----

  /** Sends the status line and headers; the body follows in sendChunk calls. */
  protected abstract sendHead(): void;
  /** Sends the whole response at once: head, then `chunk` (if any) as the whole body. */
  protected abstract sendWhole(chunk: BodyChunk | undefined): void;
  /** Sends a body chunk; false when the transport is full (call onDrain when it is not). */
  protected abstract sendChunk(chunk: BodyChunk): boolean;
  /** Ends a started response, with trailers when the app set any. */
  protected abstract sendEnd(trailers: HeaderDictionary | undefined): void;
  /** Drops the exchange: close the connection (HTTP/1.1) or reset the stream (HTTP/2). */
  protected abstract destroy(): void;
  /** Bytes written and not yet taken by the client, for minResponseDataRate. */
  protected abstract queuedBytes(): number;
  /** The client read too slowly (minResponseDataRate); the exchange is aborted after this. */
  protected onResponseTooSlow(): void {}
  /** The connection feature, made when first asked for. */
  protected abstract connection(): IHttpConnectionFeature | undefined;
  /** The trace identifier, made when first asked for. */
  protected abstract makeTraceIdentifier(): string;
  /** Whether the transport can send response trailers (IHttpResponseTrailersFeature). */
  protected abstract get sendsTrailers(): boolean;

  protected override resolve<T>(key: FeatureKey<T>): T | undefined {
    switch (key as FeatureKey<unknown>) {
      case IHttpRequestFeature:
        return this.request as T;
      case IHttpResponseFeature:
      case IHttpResponseBodyFeature:
      case IHttpRequestLifetimeFeature:
      case IHttpRequestIdentifierFeature:
      case IHttpMaxRequestBodySizeFeature:
        return this as unknown as T;
      case IHttpConnectionFeature:
        return this.connection() as T | undefined;
      case IHttpResponseTrailersFeature:
        return this.sendsTrailers ? (this as unknown as T) : undefined;
      default:
        return undefined;
    }
  }

  // ---- IHttpResponseFeature ----

  get reasonPhrase(): string | undefined {
    return this._seldom?.reasonPhrase;
  }
  set reasonPhrase(value: string | undefined) {
    if (value !== undefined || this._seldom !== undefined) this._seldomState().reasonPhrase = value;
  }

  get statusCode(): number {
    return this._statusCode;
  }
  set statusCode(value: number) {
    if (this._state !== NOT_STARTED) {
      throw new PeregrineError(
        ErrorCodes.RESPONSE_STARTED,
        "the status code cannot change after the response has started",
      );
    }
    this._statusCode = validateStatus(value);
  }

  get headers(): HeaderDictionary {
    this._headers ??= new HeaderDictionary();
    return this._headers;
  }
  set headers(value: HeaderDictionary) {
    this._headers = value;
  }

  /** True when the app set any response header (saves making an empty dictionary). */
  protected get hasHeaders(): boolean {
    return this._headers !== undefined && this._headers.size > 0;
  }

  // ---- IHttpResponseTrailersFeature ----

  /** Response trailers, sent after a streamed body (HTTP/2, chunked HTTP/1.1). */
  get trailers(): HeaderDictionary {
    const seldom = this._seldomState();
    seldom.trailers ??= new HeaderDictionary();
    return seldom.trailers;
  }
  set trailers(value: HeaderDictionary) {
    this._seldomState().trailers = value;
  }

  get hasStarted(): boolean {
    return this._state !== NOT_STARTED;
  }

  onStarting(callback: Callback): void {
    if (this._state !== NOT_STARTED) {
      throw new PeregrineError(
        ErrorCodes.RESPONSE_STARTED,
        "onStarting cannot be registered after the response has started",
      );
    }
    (this._seldomState().onStarting ??= []).push(callback);
  }

  onCompleted(callback: Callback): void {
    (this._seldomState().onCompleted ??= []).push(callback);
  }

  // ---- IHttpResponseBodyFeature ----

  get isCompleted(): boolean {
    return this._state === COMPLETED || this._state === ABORTED;
  }

  get isAborted(): boolean {
    return this._state === ABORTED;
  }

  start(): Promise<void> {
    if (this._state !== NOT_STARTED) return DONE;
    const seldom = this._seldom;
    if (seldom?.starting !== undefined) return seldom.starting;
    if (seldom?.onStarting !== undefined) {
      const starting = this._runOnStarting().then(() => this._head());
      seldom.starting = starting;
      // Only while it runs: once settled, the state alone decides, so that after a
      // failed start the app's error handling can still answer (a 500, whole).
      const settled = () => {
        if (seldom.starting === starting) seldom.starting = undefined;
      };
      starting.then(settled, settled);
      return starting;
    }
    this._head();
    return DONE;
  }

  write(chunk: BodyChunk): Promise<void> {
    const state = this._state;
    if (state === STARTED) return this._write(chunk);
    if (state === NOT_STARTED) return this.start().then(() => this._write(chunk));
    if (state === ABORTED) return DONE;
    return Promise.reject(
      new PeregrineError(ErrorCodes.RESPONSE_STARTED, "the response has completed; nothing more can be written"),
    );
  }

  flush(): Promise<void> {
    return this._state === NOT_STARTED ? this.start() : DONE;
  }

  complete(chunk?: BodyChunk): Promise<void> {
    const state = this._state;
    if (state === NOT_STARTED) {
      const seldom = this._seldom;
      // A start() under way sends the head once its callbacks finish; the body follows.
      if (seldom?.starting !== undefined) return seldom.starting.then(() => this.complete(chunk));
      if (seldom?.onStarting !== undefined) return this._runOnStarting().then(() => this._whole(chunk));
      this._whole(chunk);
      return DONE;
    }
    if (state === STARTED) {
      if (chunk === undefined) {
        this._end();
        return DONE;
      }
      return this._write(chunk).then(() => this._end());
    }
    return DONE;
  }

  private _head(): void {
    if (this._state !== NOT_STARTED) return;
    this.sendHead();
    this._headers?.lock();
    // Sending can find the client gone (the state is then ABORTED).
    if (this._state === NOT_STARTED) this._state = STARTED;
  }

  private _whole(chunk: BodyChunk | undefined): void {
    if (this._state !== NOT_STARTED) {
      if (this._state === STARTED) this._end();
      return;
    }
    // The state changes only once the transport took the response: if sending throws
    // (an invalid header, say), the app's error handler can still answer or abort.
    this.sendWhole(chunk);
    if (this._state === NOT_STARTED) this._state = COMPLETED;
    this._headers?.lock();
  }

  /**
   * Whether the transport may stream the response body on its own (the native
   * server's relay of an unread request body): not once the response has started, nor
   * with onStarting callbacks to run or trailers to send, which the exchange must do
   * itself.
   */
  protected get transportMayComplete(): boolean {
    const seldom = this._seldom;
    return (
      this._state === NOT_STARTED &&
      seldom?.onStarting === undefined &&
      seldom?.starting === undefined &&
      (seldom?.trailers === undefined || seldom.trailers.size === 0)
    );
  }

  /** The transport sent the response, head and body, on its own: it is complete. */
  protected completedByTransport(): void {
    if (this._state === NOT_STARTED) this._state = COMPLETED;
    this._headers?.lock();
  }

  private _write(chunk: BodyChunk): Promise<void> {
    if (this._state !== STARTED) return this.write(chunk);
    if (this.sendChunk(chunk)) return DONE;
    const waiting = new Promise<void>((resolve) => {
      (this._seldomState().drainWaiters ??= []).push(resolve);
    });
    const rate = this._limits.minResponseDataRate;
    return rate === null ? waiting : this._watchRate(waiting, rate);
  }

  /**
   * minResponseDataRate, as the native core measures it: while a write waits, what the
   * client takes must keep up with `bytesPerSecond` after the grace period, or the
   * exchange is aborted. The clock runs only while a write waits.
   */
  private _watchRate(waiting: Promise<void>, rate: MinDataRate): Promise<void> {
    const since = performance.now();
    const queued = this.queuedBytes();
    let timer: NodeJS.Timeout | undefined;
    const check = () => {
      const taken = Math.max(0, queued - this.queuedBytes());
      const allowance = Math.max(rate.gracePeriod, (taken / Math.max(rate.bytesPerSecond, Number.MIN_VALUE)) * 1000);
      const waited = performance.now() - since;
      if (waited >= allowance) {
        this.onResponseTooSlow();
        this.abort();
      } else timer = setTimeout(check, allowance - waited);
    };
    timer = setTimeout(check, rate.gracePeriod);
    return waiting.finally(() => clearTimeout(timer));
  }

  private _end(): void {
    if (this._state !== STARTED) return;
    this._state = COMPLETED;
    const trailers = this._seldom?.trailers;
    this.sendEnd(trailers !== undefined && trailers.size > 0 ? trailers : undefined);
  }

  private async _runOnStarting(): Promise<void> {
    const seldom = this._seldom;
    const callbacks = seldom?.onStarting;
    if (seldom === undefined || callbacks === undefined) return;
    seldom.onStarting = undefined;
    // Last registered runs first, as in ASP.NET Core.
    for (let i = callbacks.length - 1; i >= 0; i--) await (callbacks[i] as Callback)();
  }

  /** The transport can take more: writers waiting on backpressure go on. */
  protected onDrain(): void {
    const seldom = this._seldom;
    const waiters = seldom?.drainWaiters;
    if (seldom === undefined || waiters === undefined) return;
    seldom.drainWaiters = undefined;
    for (const resolve of waiters) resolve();
  }

  // ---- IHttpRequestLifetimeFeature ----

  get signal(): AbortSignal {
    const seldom = this._seldomState();
    if (seldom.controller === undefined) {
      seldom.controller = new AbortController();
      if (this._state === ABORTED) seldom.controller.abort(abortReason());
    }
    return seldom.controller.signal;
  }

  abort(): void {
    if (this._state === COMPLETED || this._state === ABORTED) return;
    this.onAborted();
    this.destroy();
  }

  /** The client went away (or the app aborted): fire the signal, fail pending reads and writes. */
  protected onAborted(): void {
    if (this._state === ABORTED || this._state === COMPLETED) return;
    this._state = ABORTED;
    const reason = abortReason();
    this._seldom?.controller?.abort(reason);
    this.requestBody.fail(reason);
    this.onDrain();
  }

  /** The exchange is over on the transport: run onCompleted callbacks, once. */
  protected onClosed(): void {
    if (this._closed) return;
    this._closed = true;
    this.onDrain();
    const seldom = this._seldom;
    const callbacks = seldom?.onCompleted;
    if (seldom === undefined || callbacks === undefined) return;
    seldom.onCompleted = undefined;
    void runCompleted(callbacks, this._logger);
  }

  /** True once onClosed ran. */
  get isClosed(): boolean {
    return this._closed;
  }

  // ---- IHttpRequestIdentifierFeature ----

  get traceIdentifier(): string {
    const seldom = this._seldomState();
    seldom.traceIdentifier ??= this.makeTraceIdentifier();
    return seldom.traceIdentifier;
  }
  set traceIdentifier(value: string) {
    this._seldomState().traceIdentifier = value;
  }

  // ---- IHttpMaxRequestBodySizeFeature ----

  get isReadOnly(): boolean {
    return this.requestBody.started;
  }

  get maxRequestBodySize(): number | null {
    const set = this._seldom?.maxRequestBodySize;
    return set === undefined ? this._limits.maxRequestBodySize : set;
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
    this._seldomState().maxRequestBodySize = value;
  }
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
