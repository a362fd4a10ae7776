import { BadHttpRequestError, ErrorCodes, PeregrineError } from "../errors.js";
import type { IHttpRequestFeature } from "../features/index.js";
import { HeaderDictionary } from "../http/headers.js";
import { splitTarget } from "../http/target.js";
import type { RequestRecord } from "./tape.js";

/** What the request body needs from its exchange. */
export interface BodySource {
  readBody(): void;
}

/** Request headers decoded from the tape the first time anything reads them. */
class NativeRequestHeaders extends HeaderDictionary {
  readonly #record: RequestRecord;
  constructor(record: RequestRecord) {
    super();
    this.#record = record;
  }
  protected override load(): Map<string, string | string[]> {
    const map = new Map<string, string | string[]>();
    for (const [name, value] of this.#record.headers()) {
      const existing = map.get(name);
      if (existing === undefined) map.set(name, value);
      else if (typeof existing === "string") map.set(name, [existing, value]);
      else existing.push(value);
    }
    // HTTP/2 carries the host in :authority; surface it as Host, as HTTP/1.1 does.
    if (!map.has("host")) {
      const authority = this.#record.authority;
      if (authority !== "") map.set("host", authority);
    }
    return map;
  }
}

/**
 * Chunks asked of the core ahead of the reader. Each ask is one chunk (hyper's reads,
 * about 32 KiB in a large upload); with several in flight, chunks arrive several per
 * wake of the JS thread instead of one round trip each.
 */
const READ_AHEAD_CHUNKS = 4;
/** No more is asked while this many bytes wait for the reader. */
const READ_AHEAD_BYTES = 128 * 1024;

/**
 * The request body as an async iterable. Chunks are pulled from the core, at most
 * READ_AHEAD_CHUNKS ahead of the reader and only while less than READ_AHEAD_BYTES
 * wait, so a slow reader bounds what the server holds for it.
 */
export class NativeRequestBody implements AsyncIterable<Uint8Array>, AsyncIterator<Uint8Array> {
  readonly #source: BodySource;
  #queue: Buffer[] = [];
  #ended: boolean;
  /** The core reported the body's end (or there was none). */
  #received: boolean;
  #error: Error | undefined;
  /** Chunks asked of the core and not yet answered. */
  #asked = 0;
  #queuedBytes = 0;
  #iterating = false;
  #waiter: { resolve: (r: IteratorResult<Uint8Array>) => void; reject: (e: unknown) => void } | undefined;

  constructor(source: BodySource, empty: boolean) {
    this.#source = source;
    this.#ended = empty;
    this.#received = empty;
  }

  /**
   * After an upgrade, the body is what the client sends on the upgraded connection. An
   * upgradable request has no body of its own, so nothing was read before.
   */
  reopenForUpgrade(): void {
    this.#ended = false;
    this.#received = false;
    this.#iterating = false;
  }

  /** True once the whole body has arrived (request trailers are then known). */
  get complete(): boolean {
    return this.#received;
  }

  /** True once the app started reading (the body size limit is then fixed). */
  get started(): boolean {
    return this.#iterating;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.#iterating) {
      throw new PeregrineError(ErrorCodes.BODY_CONSUMED, "the request body can be read only once");
    }
    this.#iterating = true;
    return this;
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    const chunk = this.#queue.shift();
    if (chunk !== undefined) {
      this.#queuedBytes -= chunk.byteLength;
      this.#pull();
      return Promise.resolve({ value: chunk, done: false });
    }
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    this.#pull();
    // Asking the core can fail at once (the exchange is over there).
    if (this.#error !== undefined) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<Uint8Array>> {
    // The app stopped reading; the rest is discarded when the exchange ends.
    this.#ended = true;
    this.#queue = [];
    this.#queuedBytes = 0;
    return Promise.resolve({ value: undefined, done: true });
  }

  #pull(): void {
    while (
      this.#asked < READ_AHEAD_CHUNKS &&
      this.#queuedBytes < READ_AHEAD_BYTES &&
      !this.#ended &&
      this.#error === undefined
    ) {
      this.#asked++;
      try {
        this.#source.readBody();
      } catch (error) {
        this.fail(
          new PeregrineError(ErrorCodes.REQUEST_ABORTED, "the request ended before its body was read", {
            cause: error,
          }),
        );
      }
    }
  }

  onData(chunk: Buffer): void {
    this.#asked--;
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      waiter.resolve({ value: chunk, done: false });
      this.#pull();
    } else if (!this.#ended) {
      this.#queue.push(chunk);
      this.#queuedBytes += chunk.byteLength;
    }
  }

  onEnd(): void {
    this.#received = true;
    this.#asked = 0;
    this.#ended = true;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.resolve({ value: undefined, done: true });
  }

  onError(code: string, message: string): void {
    const status =
      code === ErrorCodes.MAX_REQUEST_BODY_SIZE ? 413 : code === ErrorCodes.MIN_REQUEST_BODY_DATA_RATE ? 408 : 400;
    this.fail(new BadHttpRequestError(code, status, message));
  }

  /** Ends reading with an error (body error, abort); a finished body is left alone. */
  fail(error: Error): void {
    this.#asked = 0;
    if (this.#ended && this.#queue.length === 0 && this.#waiter === undefined) return;
    this.#error = error;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(error);
  }
}

/** Whoever makes the request body on demand (the exchange). */
export interface RequestBodyHolder {
  readonly requestBody: AsyncIterable<Uint8Array>;
}

/** IHttpRequestFeature over a tape record. */
export class NativeRequestFeature implements IHttpRequestFeature {
  protocol: string;
  scheme: string;
  method: string;
  pathBase = "";
  path: string;
  queryString: string;
  rawTarget: string;
  #headers: HeaderDictionary | undefined;
  readonly #record: RequestRecord;
  readonly #owner: RequestBodyHolder;
  #body: AsyncIterable<Uint8Array> | undefined;

  constructor(record: RequestRecord, owner: RequestBodyHolder) {
    this.#record = record;
    this.protocol = record.protocol;
    this.scheme = record.https ? "https" : "http";
    this.method = record.method;
    this.rawTarget = record.target;
    const { path, queryString } = splitTarget(record.target);
    this.path = path;
    this.queryString = queryString;
    this.#owner = owner;
  }

  /** The exchange's body, made when first asked for: most requests never read one. */
  get body(): AsyncIterable<Uint8Array> {
    return this.#body ?? this.#owner.requestBody;
  }
  set body(value: AsyncIterable<Uint8Array>) {
    this.#body = value;
  }

  get headers(): HeaderDictionary {
    this.#headers ??= new NativeRequestHeaders(this.#record);
    return this.#headers;
  }
  set headers(value: HeaderDictionary) {
    this.#headers = value;
  }
}
