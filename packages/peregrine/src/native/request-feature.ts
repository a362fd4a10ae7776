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
  private readonly _record: RequestRecord;
  constructor(record: RequestRecord) {
    super();
    this._record = record;
  }
  protected override load(): Map<string, string | string[]> {
    const map = new Map<string, string | string[]>();
    for (const [name, value] of this._record.headers()) {
      const existing = map.get(name);
      if (existing === undefined) map.set(name, value);
      else if (typeof existing === "string") map.set(name, [existing, value]);
      else existing.push(value);
    }
    // HTTP/2 carries the host in :authority; surface it as Host, as HTTP/1.1 does.
    if (!map.has("host")) {
      const authority = this._record.authority;
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
  private readonly _source: BodySource;
  private _queue: Buffer[] = [];
  private _ended: boolean;
  /** The core reported the body's end (or there was none). */
  private _received: boolean;
  private _error: Error | undefined;
  /** Chunks asked of the core and not yet answered. */
  private _asked = 0;
  private _queuedBytes = 0;
  private _iterating = false;
  private _waiter: { resolve: (r: IteratorResult<Uint8Array>) => void; reject: (e: unknown) => void } | undefined;

  constructor(source: BodySource, empty: boolean) {
    this._source = source;
    this._ended = empty;
    this._received = empty;
  }

  /**
   * After an upgrade, the body is what the client sends on the upgraded connection. An
   * upgradable request has no body of its own, so nothing was read before.
   */
  reopenForUpgrade(): void {
    this._ended = false;
    this._received = false;
    this._iterating = false;
  }

  /** True once the whole body has arrived (request trailers are then known). */
  get complete(): boolean {
    return this._received;
  }

  /** True once the app started reading (the body size limit is then fixed). */
  get started(): boolean {
    return this._iterating;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this._iterating) {
      throw new PeregrineError(ErrorCodes.BODY_CONSUMED, "the request body can be read only once");
    }
    this._iterating = true;
    return this;
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    const chunk = this._queue.shift();
    if (chunk !== undefined) {
      this._queuedBytes -= chunk.byteLength;
      this._pull();
      return Promise.resolve({ value: chunk, done: false });
    }
    if (this._error !== undefined) return Promise.reject(this._error);
    if (this._ended) return Promise.resolve({ value: undefined, done: true });
    this._pull();
    // Asking the core can fail at once (the exchange is over there).
    if (this._error !== undefined) return Promise.reject(this._error);
    return new Promise((resolve, reject) => {
      this._waiter = { resolve, reject };
    });
  }

  /**
   * The core relays the body into the response (NativeExchange.relay), so no chunk
   * comes here. Resolves with the end event, once the core had the first chunk and
   * sent the response head; rejects with the body's error (a limit broken before the
   * first byte) or the abort.
   */
  relayed(): Promise<void> {
    this._iterating = true;
    if (this._error !== undefined) return Promise.reject(this._error);
    return new Promise((resolve, reject) => {
      this._waiter = { resolve: () => resolve(), reject };
    });
  }

  return(): Promise<IteratorResult<Uint8Array>> {
    // The app stopped reading; the rest is discarded when the exchange ends.
    this._ended = true;
    this._queue = [];
    this._queuedBytes = 0;
    return Promise.resolve({ value: undefined, done: true });
  }

  private _pull(): void {
    while (
      this._asked < READ_AHEAD_CHUNKS &&
      this._queuedBytes < READ_AHEAD_BYTES &&
      !this._ended &&
      this._error === undefined
    ) {
      this._asked++;
      try {
        this._source.readBody();
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
    this._asked--;
    const waiter = this._waiter;
    if (waiter !== undefined) {
      this._waiter = undefined;
      waiter.resolve({ value: chunk, done: false });
      this._pull();
    } else if (!this._ended) {
      this._queue.push(chunk);
      this._queuedBytes += chunk.byteLength;
    }
  }

  onEnd(): void {
    this._received = true;
    this._asked = 0;
    this._ended = true;
    const waiter = this._waiter;
    this._waiter = undefined;
    waiter?.resolve({ value: undefined, done: true });
  }

  onError(code: string, message: string): void {
    const status =
      code === ErrorCodes.MAX_REQUEST_BODY_SIZE ? 413 : code === ErrorCodes.MIN_REQUEST_BODY_DATA_RATE ? 408 : 400;
    this.fail(new BadHttpRequestError(code, status, message));
  }

  /** Ends reading with an error (body error, abort); a finished body is left alone. */
  fail(error: Error): void {
    this._asked = 0;
    if (this._ended && this._queue.length === 0 && this._waiter === undefined) return;
    this._error = error;
    const waiter = this._waiter;
    this._waiter = undefined;
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
  private _headers: HeaderDictionary | undefined;
  private readonly _record: RequestRecord;
  private readonly _owner: RequestBodyHolder;
  private _body: AsyncIterable<Uint8Array> | undefined;

  constructor(record: RequestRecord, owner: RequestBodyHolder) {
    this._record = record;
    this.protocol = record.protocol;
    this.scheme = record.https ? "https" : "http";
    this.method = record.method;
    this.rawTarget = record.target;
    const { path, queryString } = splitTarget(record.target);
    this.path = path;
    this.queryString = queryString;
    this._owner = owner;
  }

  /** The exchange's body, made when first asked for: most requests never read one. */
  get body(): AsyncIterable<Uint8Array> {
    return this._body ?? this._owner.requestBody;
  }
  set body(value: AsyncIterable<Uint8Array>) {
    this._body = value;
  }

  get headers(): HeaderDictionary {
    this._headers ??= new NativeRequestHeaders(this._record);
    return this._headers;
  }
  set headers(value: HeaderDictionary) {
    this._headers = value;
  }
}
