import type { Duplex } from "node:stream";
import { ErrorCodes, fromNativeError, PeregrineError } from "../errors.js";
import {
  type BodyChunk,
  type FeatureKey,
  type IHttpConnectionFeature,
  type IHttpResetFeature,
  type IHttpUpgradeFeature,
  type IStreamIdFeature,
  type ITlsConnectionFeature,
  IHttpRequestTrailersFeature as RequestTrailersKey,
  IHttpResetFeature as ResetKey,
  IStreamIdFeature as StreamIdKey,
  ITlsConnectionFeature as TlsKey,
  IHttpUpgradeFeature as UpgradeKey,
} from "../features/index.js";
import type { HeaderDictionary } from "../http/headers.js";
import type { Logger } from "../logging.js";
import { abortReason, connectionIdString, type ExchangeLimits, ServerExchange } from "../servers/exchange.js";
import { RequestTrailers } from "../servers/request-trailers.js";
import { isUpgradeRequest, upgradedStream } from "../servers/upgraded-stream.js";
import type { NativeServerHandle } from "./binding.js";
import { NativeRequestBody, NativeRequestFeature } from "./request-feature.js";
import type { ResponseBatch } from "./response-batch.js";
import { RequestRecord, requestBodyEmpty, requestConnectionId, requestStreamId, requestVersion } from "./tape.js";

/** The core's code for a request it has already ended; internal (docs/errors.md). */
const UNKNOWN_EXCHANGE = "PEREGRINE_UNKNOWN_EXCHANGE";

/** What an exchange needs from the server that owns it. */
export interface ExchangeOwner {
  readonly handle: NativeServerHandle;
  readonly logger: Logger;
  /**
   * What exchanges start from, one object for all: the core enforces the data rates,
   * so the JS checks are off.
   */
  readonly exchangeLimits: ExchangeLimits;
  /** Whole responses without a custom reason phrase go out with the turn's batch. */
  readonly responses: ResponseBatch;
  /** The exchange is over: forget its id. */
  release(id: number): void;
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

/**
 * What few exchanges touch, in one object made on first use (as ServerExchange's
 * SeldomState): every field of the exchange costs each request a store.
 */
class NativeSeldom {
  connection: NativeConnectionFeature | undefined = undefined;
  requestTrailers: RequestTrailers | undefined = undefined;
  /** Trailer fields from the tape, once they arrived. */
  receivedTrailers: [string, string][] | undefined = undefined;
  /** Set while start() sends the head as a 101 for upgrade(). */
  upgrading = false;
}

/**
 * One request/response exchange on the native server. The response state machine is
 * ServerExchange's, shared with the NodeServer and TestServer; this class moves the
 * bytes through the native handle. A response finished synchronously costs one
 * native call (`respondBatch`), shared with the other responses of its JS turn. The
 * core enforces minResponseDataRate itself, so the JS
 * check is off here. The request, connection and trailers features are separate
 * objects, made when first asked for.
 */
export class NativeExchange extends ServerExchange implements IHttpResetFeature, IHttpUpgradeFeature {
  readonly id: number;
  private _request: NativeRequestFeature | undefined;
  private _requestBody: NativeRequestBody | undefined;
  protected get sendsTrailers(): boolean {
    return true;
  }
  private readonly _owner: ExchangeOwner;
  /** The request record: where it is on its batch's tape, and the record once decoded. */
  private readonly _tape: Buffer;
  private readonly _view: DataView;
  private readonly _at: number;
  private _record: RequestRecord | undefined;
  private readonly _tls: ITlsConnectionFeature | undefined;
  private _nativeSeldom: NativeSeldom | undefined;

  /** The request record starts at `at` on `tape`; `view` is the batch's DataView over it. */
  constructor(
    owner: ExchangeOwner,
    id: number,
    tape: Buffer,
    view: DataView,
    at: number,
    tls: ITlsConnectionFeature | undefined,
  ) {
    super(owner.logger, owner.exchangeLimits);
    this._owner = owner;
    this.id = id;
    this._tape = tape;
    this._view = view;
    this._at = at;
    this._tls = tls;
  }

  /**
   * Made when first asked for, with the record it decodes: an app that answers from
   * the features alone never asks, and the two objects were a sixth of the JS thread's
   * work per request in the crossing benchmark (bench/README.md).
   */
  get request(): NativeRequestFeature {
    this._request ??= new NativeRequestFeature(this._decoded(), this);
    return this._request;
  }

  private _nativeSeldomState(): NativeSeldom {
    this._nativeSeldom ??= new NativeSeldom();
    return this._nativeSeldom;
  }

  private _decoded(): RequestRecord {
    this._record ??= new RequestRecord(this._tape, this._view, this._at);
    return this._record;
  }

  private get _bodyEmpty(): boolean {
    return requestBodyEmpty(this._tape, this._at);
  }

  /** Made when first asked for: most requests have no body and never read one. */
  get requestBody(): NativeRequestBody {
    this._requestBody ??= new NativeRequestBody(this, this._bodyEmpty);
    return this._requestBody;
  }

  protected override resolve<T>(key: FeatureKey<T>): T | undefined {
    switch (key as FeatureKey<unknown>) {
      case RequestTrailersKey: {
        const seldom = this._nativeSeldomState();
        seldom.requestTrailers ??= new RequestTrailers(
          () => this.requestBody.complete,
          () => seldom.receivedTrailers ?? [],
        );
        return seldom.requestTrailers as T;
      }
      case TlsKey:
        return this._tls as T | undefined;
      case UpgradeKey:
        return requestVersion(this._tape, this._at) === 11 ? (this as unknown as T) : undefined;
      case ResetKey:
        return requestVersion(this._tape, this._at) === 20 ? (this as unknown as T) : undefined;
      case StreamIdKey: {
        const streamId = requestStreamId(this._view, this._at);
        return streamId > 0 ? ({ streamId } satisfies IStreamIdFeature as T) : undefined;
      }
      default:
        return super.resolve(key);
    }
  }

  // ---- the transport: the native handle ----

  /** The body asks the core for its next chunk. */
  readBody(): void {
    try {
      this._owner.handle.readBody(this.id);
    } catch (error) {
      this._refused(error);
    }
  }

  /**
   * A call into the core for this exchange threw. The core may have ended the exchange
   * a moment ago, when the client went away, with the aborted event still on its way.
   * That is the abort, now: waiting for the event would let the app answer first, the
   * exchange would end, and the event would find nothing to fire. Any other error goes
   * to the app, with its code.
   */
  private _refused(error: unknown): void {
    const native = fromNativeError(error);
    if (!(native instanceof PeregrineError) || native.code !== UNKNOWN_EXCHANGE) throw native;
    this.clientGone();
  }

  private _packedHeaders(): string {
    return this.hasHeaders ? this.headers.pack() : "";
  }

  protected sendHead(): void {
    try {
      if (this._nativeSeldom?.upgrading === true) {
        if (!this.headers.has("upgrade")) this.headers.set("upgrade", this.request.headers.get("upgrade") ?? "");
        this._owner.handle.upgrade(this.id, this.headers.pack());
        return;
      }
      this._owner.handle.startResponse(this.id, this.statusCode, this._packedHeaders(), this.reasonPhrase);
    } catch (error) {
      this._refused(error);
    }
  }

  protected sendWhole(chunk: BodyChunk | undefined): void {
    const reasonPhrase = this.reasonPhrase;
    try {
      // A reason phrase is checked by the core, so it goes alone, where a refusal can
      // still reach the app's error handling; header names and values are checked here.
      if (reasonPhrase === undefined)
        this._owner.responses.add(this.id, this.statusCode, this.hasHeaders ? this.headers : undefined, chunk);
      else this._owner.handle.respond(this.id, this.statusCode, this._packedHeaders(), chunk, reasonPhrase);
    } catch (error) {
      this._refused(error);
    }
    this._close();
  }

  /**
   * IHttpResponseBodyFeature.relay: the app answered with its own request body, unread.
   * The core streams it back itself (`relay`), each chunk written as soon as it is
   * read and before the next is read, with no chunk crossing into JS: crossing, a
   * chunk was written after the next one was read, from memory that had left the
   * cache meanwhile (bench/README.md). The exchange ends here, as with a whole
   * response. When the response has started, or has onStarting callbacks or trailers,
   * the chunks cross and are written back in JS.
   */
  relay(source: AsyncIterable<unknown>): Promise<void> | undefined {
    const body = this._requestBody;
    if (body === undefined || source !== body || body.started) return undefined;
    if (this._nativeSeldom?.upgrading === true || !this.transportMayComplete) return this._relay(body);
    return this._relayInCore(body);
  }

  private async _relayInCore(body: NativeRequestBody): Promise<void> {
    try {
      this._owner.handle.relay(this.id, this.statusCode, this._packedHeaders(), this.reasonPhrase);
    } catch (error) {
      this._refused(error);
    }
    // Settled by the core's events: the end once the response went out, or the body's
    // error or abort, which the app handles as it would a failed read.
    await body.relayed();
    this.completedByTransport();
    this._close();
  }

  /**
   * The relay in JS. Its chunks reach no one but this loop, so each is given back to
   * the core as soon as the core has it, instead of when V8 collects its Buffer. V8
   * starts a major collection for every 64 MiB of such memory: in a streamed echo that
   * cost about a quarter of the server's CPU, and the core read into cold memory.
   */
  private async _relay(body: NativeRequestBody): Promise<void> {
    const handle = this._owner.handle;
    for await (const chunk of body) {
      await this.write(chunk);
      // The core sends from its own copy of a lent chunk (crates/peregrine-node lent.rs).
      handle.releaseChunk(chunk.buffer);
    }
  }

  protected sendChunk(chunk: BodyChunk): boolean {
    // 1: the core's buffer is full, a write-ready event follows. 2: the client is gone,
    // and the aborted event follows.
    return this._owner.handle.write(this.id, chunk) !== 1;
  }

  protected sendEnd(trailers: HeaderDictionary | undefined): void {
    try {
      this._owner.handle.finish(this.id, trailers === undefined ? "" : trailers.pack());
    } catch (error) {
      this._refused(error);
    }
    this._close();
  }

  protected destroy(): void {
    this._owner.handle.abort(this.id);
    this._close();
  }

  protected queuedBytes(): number {
    return 0;
  }

  protected connection(): IHttpConnectionFeature {
    const seldom = this._nativeSeldomState();
    seldom.connection ??= new NativeConnectionFeature(this._decoded());
    return seldom.connection;
  }

  protected makeTraceIdentifier(): string {
    return `${connectionIdString(requestConnectionId(this._view, this._at))}:${this.id.toString(16).padStart(8, "0").toUpperCase()}`;
  }

  /** The exchange is over in the core: forget its id and run onCompleted, once. */
  private _close(): void {
    if (!this.isClosed) {
      this._owner.release(this.id);
    }
    this.onClosed();
  }

  // ---- events from the tape ----

  /** Write-ready: writers waiting on backpressure may go on. */
  onWriteReady(): void {
    this.onDrain();
  }

  /** The client went away (or the server stopped under it). */
  clientGone(): void {
    this.onAborted();
    this._close();
  }

  /** Request trailers from the tape; the body's end follows them. */
  onTrailers(headers: [string, string][]): void {
    this._nativeSeldomState().receivedTrailers = headers;
  }

  // ---- IHttpUpgradeFeature ----

  get isUpgradableRequest(): boolean {
    const headers = this.request.headers;
    return isUpgradeRequest(this.request.protocol, (name) => headers.get(name), !this._bodyEmpty);
  }

  async upgrade(): Promise<Duplex> {
    if (!this.isUpgradableRequest) {
      throw new PeregrineError(
        ErrorCodes.NOT_UPGRADABLE,
        "upgrade(): this request cannot be upgraded; only an HTTP/1.1 request with Connection: upgrade, an Upgrade header and no body can (check isUpgradableRequest)",
      );
    }
    if (this.hasStarted) {
      throw new PeregrineError(ErrorCodes.RESPONSE_STARTED, "upgrade(): the response has already started");
    }
    // The head goes out through the response state machine (onStarting runs, headers
    // lock), as a 101 from the core instead of a response head.
    this._nativeSeldomState().upgrading = true;
    try {
      await this.start();
    } catch (error) {
      throw fromNativeError(error);
    } finally {
      this._nativeSeldomState().upgrading = false;
    }
    // The client left before the 101 went out.
    if (this.isAborted) throw abortReason();
    this.requestBody.reopenForUpgrade();
    return upgradedStream(this.requestBody, {
      write: (chunk) => this.write(chunk),
      complete: () => this.complete(),
      abort: () => this.abort(),
    });
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
    this._owner.handle.reset(this.id, errorCode);
    this.clientGone();
  }

  // ---- IHttpMaxRequestBodySizeFeature: the core enforces the limit ----

  override get maxRequestBodySize(): number | null {
    return super.maxRequestBodySize;
  }
  override set maxRequestBodySize(value: number | null) {
    super.maxRequestBodySize = value;
    try {
      this._owner.handle.setMaxRequestBodySize(this.id, value ?? -1);
    } catch (error) {
      this._refused(error);
    }
  }
}
