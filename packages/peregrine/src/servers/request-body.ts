import { BadHttpRequestError, ErrorCodes, PeregrineError } from "../errors.js";
import type { MinDataRate } from "../server/limits.js";

/** Where a request body's bytes come from: one chunk per `read()`, null at the end. */
export interface BodyReader {
  read(): Promise<Uint8Array | null>;
  /** Stops reading; the rest of the body is discarded. */
  cancel(): void;
}

/** What the body asks of its exchange. */
export interface RequestBodyOwner {
  /** The limit in force when reading starts (IHttpMaxRequestBodySizeFeature). */
  readonly maxRequestBodySize: number | null;
  /** The app started reading: e.g. send `100 Continue`. */
  onBodyReadStarted?(): void;
  /** limits.minRequestBodyDataRate, or null for no check. */
  readonly minRequestBodyDataRate: MinDataRate | null;
  /** The body broke a limit (size, rate): the rest is unread, so the connection must not be reused. */
  onBodyRejected?(): void;
}

export function bodyTooLarge(limit: number): BadHttpRequestError {
  return new BadHttpRequestError(
    ErrorCodes.MAX_REQUEST_BODY_SIZE,
    413,
    `the request body is larger than the limit of ${limit} bytes (limits.maxRequestBodySize)`,
  );
}

function tooSlow(): BadHttpRequestError {
  return new BadHttpRequestError(
    ErrorCodes.MIN_REQUEST_BODY_DATA_RATE,
    408,
    "the client sent the request body too slowly (limits.minRequestBodyDataRate)",
  );
}

/**
 * minRequestBodyDataRate, as the native core measures it: the clock runs only while
 * the app waits for data that is not there, so a slow app is not blamed on the client.
 * After the grace period, the client must have sent `bytesPerSecond` for every second
 * it kept the app waiting.
 */
class RateWatch {
  #waited = 0;
  constructor(readonly rate: MinDataRate) {}

  /** Milliseconds the app may still wait, given what the client has sent. */
  remaining(received: number): number {
    const earned = (received / Math.max(this.rate.bytesPerSecond, Number.MIN_VALUE)) * 1000;
    return Math.max(this.rate.gracePeriod, earned) - this.#waited;
  }

  waited(ms: number): void {
    this.#waited += ms;
  }
}

/**
 * A request body for servers written in TypeScript (NodeServer, TestServer): it pulls
 * one chunk at a time from a BodyReader, can be read once, and enforces
 * maxRequestBodySize the way the native core does: a Content-Length over the limit
 * fails the first read, and a body that grows past it fails the read that crosses it,
 * both with a 413 BadHttpRequestError (PEREGRINE_MAX_REQUEST_BODY_SIZE).
 */
export class RequestBody implements AsyncIterable<Uint8Array>, AsyncIterator<Uint8Array> {
  readonly #reader: BodyReader | undefined;
  readonly #owner: RequestBodyOwner;
  readonly #declaredLength: number | undefined;
  #started = false;
  #ended: boolean;
  #error: Error | undefined;
  #limit: number | null = null;
  #received = 0;
  #rate: RateWatch | undefined;

  /** `reader` undefined means an empty body; `declaredLength` is the Content-Length, if any. */
  constructor(owner: RequestBodyOwner, reader: BodyReader | undefined, declaredLength: number | undefined) {
    this.#owner = owner;
    this.#reader = reader;
    this.#ended = reader === undefined;
    this.#declaredLength = declaredLength;
  }

  /** True once the app started reading (the size limit is then fixed). */
  get started(): boolean {
    return this.#started;
  }

  /** True once the body was read to the end. */
  get ended(): boolean {
    return this.#ended && this.#error === undefined;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.#started) throw new PeregrineError(ErrorCodes.BODY_CONSUMED, "the request body can be read only once");
    this.#begin();
    return this;
  }

  #begin(): void {
    this.#started = true;
    this.#limit = this.#owner.maxRequestBodySize;
    const limit = this.#limit;
    if (limit !== null && this.#declaredLength !== undefined && this.#declaredLength > limit) {
      this.#tooLarge(limit);
      return;
    }
    if (this.#ended) return;
    const rate = this.#owner.minRequestBodyDataRate;
    if (rate !== null) this.#rate = new RateWatch(rate);
    this.#owner.onBodyReadStarted?.();
  }

  /** The next chunk; under a rate watch, fails with 408 when the client falls behind. */
  #read(reader: BodyReader): Promise<Uint8Array | null> {
    const rate = this.#rate;
    if (rate === undefined) return reader.read();
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(tooSlow()), Math.max(0, rate.remaining(this.#received)));
    });
    return Promise.race([reader.read(), expired]).finally(() => {
      clearTimeout(timer);
      rate.waited(performance.now() - started);
    });
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    if (this.#error !== undefined) throw this.#error;
    if (this.#ended) return { value: undefined, done: true };
    const reader = this.#reader as BodyReader;
    let chunk: Uint8Array | null;
    try {
      chunk = await this.#read(reader);
    } catch (error) {
      if (error instanceof BadHttpRequestError && error.code === ErrorCodes.MIN_REQUEST_BODY_DATA_RATE) {
        this.fail(error);
        this.#owner.onBodyRejected?.();
        throw error;
      }
      // An abort may have failed the body while the read was pending; that error wins.
      this.fail(
        this.#error ??
          (error instanceof PeregrineError
            ? error
            : new BadHttpRequestError(
                ErrorCodes.BODY_READ_FAILED,
                400,
                `reading the request body failed: ${(error as Error)?.message ?? String(error)}`,
                {
                  cause: error,
                },
              )),
      );
      throw this.#error;
    }
    if (this.#error !== undefined) throw this.#error;
    if (chunk === null) {
      this.#ended = true;
      return { value: undefined, done: true };
    }
    this.#received += chunk.byteLength;
    const limit = this.#limit;
    if (limit !== null && this.#received > limit) {
      this.#tooLarge(limit);
      throw this.#error;
    }
    return { value: chunk, done: false };
  }

  return(): Promise<IteratorResult<Uint8Array>> {
    // The app stopped reading: the rest is discarded.
    if (!this.#ended) {
      this.#ended = true;
      this.#reader?.cancel();
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  #tooLarge(limit: number): void {
    this.fail(bodyTooLarge(limit));
    this.#owner.onBodyRejected?.();
  }

  /** Ends reading with an error (an abort, a broken body); a body read to the end is left alone. */
  fail(error: Error): void {
    if (this.#error !== undefined || this.#ended) return;
    this.#error = error;
    this.#ended = true;
    this.#reader?.cancel();
  }
}
