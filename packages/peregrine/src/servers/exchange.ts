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
  readonly #logger: Logger;
  readonly #limits: ExchangeLimits;
  #state = NOT_STARTED;
  #statusCode = 200;
  #headers: HeaderDictionary | undefined = undefined;
  #seldom: SeldomState | undefined = undefined;
  #closed = false;

  constructor(logger: Logger, limits: ExchangeLimits) {
    super();
    this.#logger = logger;
    this.#limits = limits;
  }

  #seldomState(): SeldomState {
    this.#seldom ??= new SeldomState();
    return this.#seldom;
  }

  /** limits.minRequestBodyDataRate, or null for no check. */
  get minRequestBodyDataRate(): MinDataRate | null {
    return this.#limits.minRequestBodyDataRate;
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
    return this.#seldom?.reasonPhrase;
  }
  set reasonPhrase(value: string | undefined) {
    if (value !== undefined || this.#seldom !== undefined) this.#seldomState().reasonPhrase = value;
  }

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

  /** True when the app set any response header (saves making an empty dictionary). */
  protected get hasHeaders(): boolean {
    return this.#headers !== undefined && this.#headers.size > 0;
  }

  // ---- IHttpResponseTrailersFeature ----

  /** Response trailers, sent after a streamed body (HTTP/2, chunked HTTP/1.1). */
  get trailers(): HeaderDictionary {
    const seldom = this.#seldomState();
    seldom.trailers ??= new HeaderDictionary();
    return seldom.trailers;
  }
  set trailers(value: HeaderDictionary) {
    this.#seldomState().trailers = value;
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
    (this.#seldomState().onStarting ??= []).push(callback);
  }

  onCompleted(callback: Callback): void {
    (this.#seldomState().onCompleted ??= []).push(callback);
  }

  // ---- IHttpResponseBodyFeature ----

  get isCompleted(): boolean {
    return this.#state === COMPLETED || this.#state === ABORTED;
  }

  get isAborted(): boolean {
    return this.#state === ABORTED;
  }

  start(): Promise<void> {
    if (this.#state !== NOT_STARTED) return DONE;
    const seldom = this.#seldom;
    if (seldom?.starting !== undefined) return seldom.starting;
    if (seldom?.onStarting !== undefined) {
      const starting = this.#runOnStarting().then(() => this.#head());
      seldom.starting = starting;
      // Only while it runs: once settled, the state alone decides, so that after a
      // failed start the app's error handling can still answer (a 500, whole).
      const settled = () => {
        if (seldom.starting === starting) seldom.starting = undefined;
      };
      starting.then(settled, settled);
      return starting;
    }
    this.#head();
    return DONE;
  }

  write(chunk: BodyChunk): Promise<void> {
    const state = this.#state;
    if (state === STARTED) return this.#write(chunk);
    if (state === NOT_STARTED) return this.start().then(() => this.#write(chunk));
    if (state === ABORTED) return DONE;
    return Promise.reject(
      new PeregrineError(ErrorCodes.RESPONSE_STARTED, "the response has completed; nothing more can be written"),
    );
  }

  flush(): Promise<void> {
    return this.#state === NOT_STARTED ? this.start() : DONE;
  }

  complete(chunk?: BodyChunk): Promise<void> {
    const state = this.#state;
    if (state === NOT_STARTED) {
      const seldom = this.#seldom;
      // A start() under way sends the head once its callbacks finish; the body follows.
      if (seldom?.starting !== undefined) return seldom.starting.then(() => this.complete(chunk));
      if (seldom?.onStarting !== undefined) return this.#runOnStarting().then(() => this.#whole(chunk));
      this.#whole(chunk);
      return DONE;
    }
    if (state === STARTED) {
      if (chunk === undefined) {
        this.#end();
        return DONE;
      }
      return this.#write(chunk).then(() => this.#end());
    }
    return DONE;
  }

  #head(): void {
    if (this.#state !== NOT_STARTED) return;
    this.sendHead();
    this.#headers?.lock();
    // Sending can find the client gone (the state is then ABORTED).
    if (this.#state === NOT_STARTED) this.#state = STARTED;
  }

  #whole(chunk: BodyChunk | undefined): void {
    if (this.#state !== NOT_STARTED) {
      if (this.#state === STARTED) this.#end();
      return;
    }
    // The state changes only once the transport took the response: if sending throws
    // (an invalid header, say), the app's error handler can still answer or abort.
    this.sendWhole(chunk);
    if (this.#state === NOT_STARTED) this.#state = COMPLETED;
    this.#headers?.lock();
  }

  #write(chunk: BodyChunk): Promise<void> {
    if (this.#state !== STARTED) return this.write(chunk);
    if (this.sendChunk(chunk)) return DONE;
    const waiting = new Promise<void>((resolve) => {
      (this.#seldomState().drainWaiters ??= []).push(resolve);
    });
    const rate = this.#limits.minResponseDataRate;
    return rate === null ? waiting : this.#watchRate(waiting, rate);
  }

  /**
   * minResponseDataRate, as the native core measures it: while a write waits, what the
   * client takes must keep up with `bytesPerSecond` after the grace period, or the
   * exchange is aborted. The clock runs only while a write waits.
   */
  #watchRate(waiting: Promise<void>, rate: MinDataRate): Promise<void> {
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

  #end(): void {
    if (this.#state !== STARTED) return;
    this.#state = COMPLETED;
    const trailers = this.#seldom?.trailers;
    this.sendEnd(trailers !== undefined && trailers.size > 0 ? trailers : undefined);
  }

  async #runOnStarting(): Promise<void> {
    const seldom = this.#seldom;
    const callbacks = seldom?.onStarting;
    if (seldom === undefined || callbacks === undefined) return;
    seldom.onStarting = undefined;
    // Last registered runs first, as in ASP.NET Core.
    for (let i = callbacks.length - 1; i >= 0; i--) await (callbacks[i] as Callback)();
  }

  /** The transport can take more: writers waiting on backpressure go on. */
  protected onDrain(): void {
    const seldom = this.#seldom;
    const waiters = seldom?.drainWaiters;
    if (seldom === undefined || waiters === undefined) return;
    seldom.drainWaiters = undefined;
    for (const resolve of waiters) resolve();
  }

  // ---- IHttpRequestLifetimeFeature ----

  get signal(): AbortSignal {
    const seldom = this.#seldomState();
    if (seldom.controller === undefined) {
      seldom.controller = new AbortController();
      if (this.#state === ABORTED) seldom.controller.abort(abortReason());
    }
    return seldom.controller.signal;
  }

  abort(): void {
    if (this.#state === COMPLETED || this.#state === ABORTED) return;
    this.onAborted();
    this.destroy();
  }

  /** The client went away (or the app aborted): fire the signal, fail pending reads and writes. */
  protected onAborted(): void {
    if (this.#state === ABORTED || this.#state === COMPLETED) return;
    this.#state = ABORTED;
    const reason = abortReason();
    this.#seldom?.controller?.abort(reason);
    this.requestBody.fail(reason);
    this.onDrain();
  }

  /** The exchange is over on the transport: run onCompleted callbacks, once. */
  protected onClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.onDrain();
    const seldom = this.#seldom;
    const callbacks = seldom?.onCompleted;
    if (seldom === undefined || callbacks === undefined) return;
    seldom.onCompleted = undefined;
    void runCompleted(callbacks, this.#logger);
  }

  /** True once onClosed ran. */
  get isClosed(): boolean {
    return this.#closed;
  }

  // ---- IHttpRequestIdentifierFeature ----

  get traceIdentifier(): string {
    const seldom = this.#seldomState();
    seldom.traceIdentifier ??= this.makeTraceIdentifier();
    return seldom.traceIdentifier;
  }
  set traceIdentifier(value: string) {
    this.#seldomState().traceIdentifier = value;
  }

  // ---- IHttpMaxRequestBodySizeFeature ----

  get isReadOnly(): boolean {
    return this.requestBody.started;
  }

  get maxRequestBodySize(): number | null {
    const set = this.#seldom?.maxRequestBodySize;
    return set === undefined ? this.#limits.maxRequestBodySize : set;
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
    this.#seldomState().maxRequestBodySize = value;
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
