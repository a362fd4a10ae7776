/**
 * Request features: small interfaces with one job each, as in ASP.NET Core's
 * Http.Features. A server supplies them; HttpContext is only a convenient view.
 * Each interface has a key of the same name: `ctx.features.get(IHttpRequestFeature)`.
 */
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
export const IHttpRequestLifetimeFeature = new FeatureKey<IHttpRequestLifetimeFeature>(
  "IHttpRequestLifetimeFeature",
);

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
