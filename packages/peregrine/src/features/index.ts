/**
 * Request features: small interfaces with one job each, as in ASP.NET Core's
 * Http.Features. A server supplies them; HttpContext is only a convenient view.
 * Each interface has a key of the same name: `ctx.features.get(IHttpRequestFeature)`.
 */
import type { Duplex } from "node:stream";
import type { HeaderDictionary } from "../http/headers.js";
import { FeatureKey } from "./feature-collection.js";

export { FeatureCollection, FeatureKey, type IFeatureCollection } from "./feature-collection.js";

export type BodyChunk = string | Uint8Array;

/** The request line, headers and body. */
export interface IHttpRequestFeature {
  /** "HTTP/1.1", "HTTP/1.0" or "HTTP/2". */
  protocol: string;
  /** "http" or "https". */
  scheme: string;
  method: string;
  /** The part of the path a `map(prefix, ...)` branch consumed; "" at the top. */
  pathBase: string;
  /** The decoded path, relative to pathBase; always starts with "/". */
  path: string;
  /** "?a=1&b=2" including the "?", or "". */
  queryString: string;
  /** The request target exactly as the client sent it. */
  rawTarget: string;
  headers: HeaderDictionary;
  body: AsyncIterable<Uint8Array>;
}
export const IHttpRequestFeature = new FeatureKey<IHttpRequestFeature>("IHttpRequestFeature");

/** Status, headers and the response's lifecycle. */
export interface IHttpResponseFeature {
  statusCode: number;
  /** Sent on HTTP/1.1 when set; HTTP/2 has no reason phrases. */
  reasonPhrase: string | undefined;
  headers: HeaderDictionary;
  readonly hasStarted: boolean;
  /** Runs just before the headers are sent, in reverse order of registration. */
  onStarting(callback: () => void | Promise<void>): void;
  /** Runs after the response is complete (or aborted), in reverse order. */
  onCompleted(callback: () => void | Promise<void>): void;
}
export const IHttpResponseFeature = new FeatureKey<IHttpResponseFeature>("IHttpResponseFeature");

/** Writing the response body, with backpressure. */
export interface IHttpResponseBodyFeature {
  /** Sends the headers if they have not been sent. */
  start(): Promise<void>;
  /** Resolves when the chunk is accepted and the buffer is below its high-water mark. */
  write(chunk: BodyChunk): Promise<void>;
  /** Resolves once everything written so far has been handed to the transport. */
  flush(): Promise<void>;
  /** Ends the response, with an optional last chunk. Further writes are errors. */
  complete(chunk?: BodyChunk): Promise<void>;
  readonly isCompleted: boolean;
  /**
   * Optional: writes every chunk of `source`, when the server can do that better than
   * write() chunk by chunk, and resolves once the last is accepted (complete() is
   * still the caller's). Returns undefined when it cannot, and the caller writes the
   * chunks itself. NativeServer relays its own unread request body this way.
   */
  relay?(source: AsyncIterable<unknown>): Promise<void> | undefined;
}
export const IHttpResponseBodyFeature = new FeatureKey<IHttpResponseBodyFeature>("IHttpResponseBodyFeature");

/** The connection a request arrived on. */
export interface IHttpConnectionFeature {
  readonly connectionId: string;
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
}
export const IHttpConnectionFeature = new FeatureKey<IHttpConnectionFeature>("IHttpConnectionFeature");

/** Request aborts: the client going away, or the app giving up. */
export interface IHttpRequestLifetimeFeature {
  /** Fires when the client disconnects or `abort()` is called. */
  readonly signal: AbortSignal;
  /** Drops the request: the connection is closed (HTTP/1.1) or the stream reset (HTTP/2). */
  abort(): void;
}
export const IHttpRequestLifetimeFeature = new FeatureKey<IHttpRequestLifetimeFeature>("IHttpRequestLifetimeFeature");

/** A unique identifier for the request, for logs and tracing. */
export interface IHttpRequestIdentifierFeature {
  traceIdentifier: string;
}
export const IHttpRequestIdentifierFeature = new FeatureKey<IHttpRequestIdentifierFeature>(
  "IHttpRequestIdentifierFeature",
);

/** The request body size limit for this request (limits.maxRequestBodySize by default). */
export interface IHttpMaxRequestBodySizeFeature {
  /** True once the body is being read: the limit can no longer change. */
  readonly isReadOnly: boolean;
  /** Bytes, or null for no limit. */
  maxRequestBodySize: number | null;
}
export const IHttpMaxRequestBodySizeFeature = new FeatureKey<IHttpMaxRequestBodySizeFeature>(
  "IHttpMaxRequestBodySizeFeature",
);

/** Server level: the addresses the server listens on (port 0 resolved once started). */
export interface IServerAddressesFeature {
  readonly addresses: string[];
}
export const IServerAddressesFeature = new FeatureKey<IServerAddressesFeature>("IServerAddressesFeature");

/**
 * The TLS connection a request arrived on (ASP.NET Core's ITlsConnectionFeature and
 * ITlsHandshakeFeature in one). Present only on https requests: `ctx.tls`.
 */
export interface ITlsConnectionFeature {
  /** "TLSv1.3" or "TLSv1.2". */
  readonly protocol: string;
  /** The IANA name of the negotiated suite, e.g. "TLS_AES_128_GCM_SHA256". */
  readonly cipherSuite: string;
  /** "h2" or "http/1.1"; undefined when the client offered no ALPN. */
  readonly alpnProtocol: string | undefined;
  /** The host name the client asked for (SNI); undefined when it sent none. */
  readonly serverName: string | undefined;
  /** The client's certificate as PEM, when it presented one. */
  readonly clientCertificate: string | undefined;
}
export const ITlsConnectionFeature = new FeatureKey<ITlsConnectionFeature>("ITlsConnectionFeature");

/** Trailers the client sent after the request body (HTTP/2, chunked HTTP/1.1). */
export interface IHttpRequestTrailersFeature {
  /** True once the body has been read to the end: only then are trailers known. */
  readonly available: boolean;
  /** The trailers; reading them before `available` is an error. */
  readonly trailers: HeaderDictionary;
}
export const IHttpRequestTrailersFeature = new FeatureKey<IHttpRequestTrailersFeature>("IHttpRequestTrailersFeature");

/** Trailers sent after the response body (HTTP/2, chunked HTTP/1.1). */
export interface IHttpResponseTrailersFeature {
  /** Set them before the response completes; they are sent after the last chunk. */
  trailers: HeaderDictionary;
}
export const IHttpResponseTrailersFeature = new FeatureKey<IHttpResponseTrailersFeature>(
  "IHttpResponseTrailersFeature",
);

/** The HTTP/2 stream a request arrived on. Present only on HTTP/2 requests. */
export interface IStreamIdFeature {
  readonly streamId: number;
}
export const IStreamIdFeature = new FeatureKey<IStreamIdFeature>("IStreamIdFeature");

/** HTTP/2 error codes for IHttpResetFeature.reset() (RFC 9113, section 7). */
export const Http2ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

/** Resets the request's stream (RST_STREAM) with an error code. Present only on HTTP/2 requests. */
export interface IHttpResetFeature {
  /** Ends the exchange at once, before or after the response started; fires `ctx.signal`. */
  reset(errorCode: number): void;
}
export const IHttpResetFeature = new FeatureKey<IHttpResetFeature>("IHttpResetFeature");

/**
 * HTTP/1.1 Upgrade (ASP.NET Core's IHttpUpgradeFeature). Present on servers that can
 * upgrade; see docs/upgrade.md.
 */
export interface IHttpUpgradeFeature {
  /** HTTP/1.1, `Connection: upgrade`, an `Upgrade` header and no body. */
  readonly isUpgradableRequest: boolean;
  /**
   * Answers 101 Switching Protocols with the response headers set so far (plus
   * `Connection: upgrade`, and `Upgrade` as the client asked unless set), and resolves
   * with the connection as a byte stream. It stays open while the pipeline runs: when
   * the app's handler returns, the stream is ended. Rejects with
   * PEREGRINE_NOT_UPGRADABLE, or PEREGRINE_UPGRADE_LIMIT past
   * limits.maxConcurrentUpgradedConnections; the response can then still be sent.
   */
  upgrade(): Promise<Duplex>;
}
export const IHttpUpgradeFeature = new FeatureKey<IHttpUpgradeFeature>("IHttpUpgradeFeature");
