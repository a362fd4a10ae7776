import {
  type BodyChunk,
  type FeatureKey,
  type IFeatureCollection,
  IHttpConnectionFeature,
  IHttpRequestFeature,
  IHttpRequestIdentifierFeature,
  IHttpRequestLifetimeFeature,
  IHttpResponseBodyFeature,
  IHttpResponseFeature,
  ITlsConnectionFeature,
} from "../features/index.js";
import type { RouteEndpoint } from "../routing/router.js";
import { parseJson, readAll } from "./body.js";
import type { HeaderDictionary } from "./headers.js";

/** Route parameters captured by the matched route template. */
export type RouteValues = Record<string, string | undefined>;

/**
 * The per-request context that flows through the middleware pipeline. It is a view over
 * the server's features; whatever it shows comes from them.
 */
export class HttpContext {
  readonly features: IFeatureCollection;
  readonly request: HttpRequest;
  readonly response: HttpResponse;
  // The three features every request reads, looked up again only when the collection
  // changed (its revision moved). Fields here rather than an object of their own: one
  // allocation per request fewer.
  private _revision = -1;
  private _request: IHttpRequestFeature | undefined = undefined;
  private _response: IHttpResponseFeature | undefined = undefined;
  private _body: IHttpResponseBodyFeature | undefined = undefined;
  private _items: Map<unknown, unknown> | undefined;
  private _connection: ConnectionInfo | undefined;

  /** The endpoint routing matched, or undefined (then the pipeline ends in 404/405). */
  endpoint: RouteEndpoint | undefined;
  /** @internal Methods the path allows when only the method failed to match (for 405). */
  allowedMethods: string[] | undefined;
  /** @internal The value the endpoint returned; written when the pipeline unwinds. */
  endpointResult: unknown;

  constructor(features: IFeatureCollection) {
    this.features = features;
    this.request = new HttpRequest(this);
    this.response = new HttpResponse(this);
  }

  private _check(): void {
    const revision = this.features.revision;
    if (revision !== this._revision) {
      this._revision = revision;
      this._request = undefined;
      this._response = undefined;
      this._body = undefined;
    }
  }

  /** @internal The request feature, for the views. */
  requestFeature(): IHttpRequestFeature {
    this._check();
    this._request ??= need(this.features, IHttpRequestFeature);
    return this._request;
  }

  /** @internal The response feature, for the views. */
  responseFeature(): IHttpResponseFeature {
    this._check();
    this._response ??= need(this.features, IHttpResponseFeature);
    return this._response;
  }

  /** @internal The response-body feature, for the views. */
  bodyFeature(): IHttpResponseBodyFeature {
    this._check();
    this._body ??= need(this.features, IHttpResponseBodyFeature);
    return this._body;
  }

  /** Per-request storage for middleware. */
  get items(): Map<unknown, unknown> {
    this._items ??= new Map();
    return this._items;
  }

  get connection(): ConnectionInfo {
    this._connection ??= new ConnectionInfo(this.features);
    return this._connection;
  }

  /** Fires when the client goes away or the request is aborted. */
  get signal(): AbortSignal {
    return need(this.features, IHttpRequestLifetimeFeature).signal;
  }

  /** Drops the request without a (complete) response. */
  abort(): void {
    need(this.features, IHttpRequestLifetimeFeature).abort();
  }

  /** The TLS details of an https request (protocol, cipher suite, ALPN, SNI, client certificate); undefined in cleartext. */
  get tls(): ITlsConnectionFeature | undefined {
    return this.features.get(ITlsConnectionFeature);
  }

  get traceIdentifier(): string {
    return this.features.get(IHttpRequestIdentifierFeature)?.traceIdentifier ?? "";
  }

  set traceIdentifier(value: string) {
    const feature = this.features.get(IHttpRequestIdentifierFeature);
    if (feature) feature.traceIdentifier = value;
  }
}

function need<T>(features: IFeatureCollection, key: FeatureKey<T>): T {
  const feature = features.get(key);
  if (feature === undefined) {
    throw new TypeError(`this server does not provide ${key.name}`);
  }
  return feature;
}

export class HttpRequest {
  private readonly _ctx: HttpContext;
  private _query: URLSearchParams | undefined;
  private _queryFor: string | undefined;

  private _routeValues: RouteValues | undefined;

  constructor(ctx: HttpContext) {
    this._ctx = ctx;
  }

  // Private methods rather than private getters here and below: Node 20's V8 reads a
  // private getter through a runtime call wherever the access is not inlined
  // (Runtime_LoadPrivateGetter, about 1 % of the JS thread under load).
  private _feature(): IHttpRequestFeature {
    return this._ctx.requestFeature();
  }

  /** Values captured by the route template, e.g. `{ id: "42" }` for "/users/{id}". */
  get routeValues(): RouteValues {
    this._routeValues ??= {};
    return this._routeValues;
  }
  set routeValues(value: RouteValues) {
    this._routeValues = value;
  }

  get method(): string {
    return this._feature().method;
  }
  set method(value: string) {
    this._feature().method = value;
  }

  get scheme(): string {
    return this._feature().scheme;
  }
  set scheme(value: string) {
    this._feature().scheme = value;
  }

  get isHttps(): boolean {
    return this.scheme === "https";
  }

  /** The Host header (HTTP/2's :authority), with port when the client sent one. */
  get host(): string {
    return this._feature().headers.get("host") ?? "";
  }
  set host(value: string) {
    this._feature().headers.set("host", value);
  }

  get path(): string {
    return this._feature().path;
  }
  set path(value: string) {
    this._feature().path = value;
  }

  get pathBase(): string {
    return this._feature().pathBase;
  }
  set pathBase(value: string) {
    this._feature().pathBase = value;
  }

  get queryString(): string {
    return this._feature().queryString;
  }
  set queryString(value: string) {
    this._feature().queryString = value;
  }

  /** The parsed query string. */
  get query(): URLSearchParams {
    const qs = this._feature().queryString;
    if (this._query === undefined || this._queryFor !== qs) {
      this._query = new URLSearchParams(qs);
      this._queryFor = qs;
    }
    return this._query;
  }

  get protocol(): string {
    return this._feature().protocol;
  }

  get rawTarget(): string {
    return this._feature().rawTarget;
  }

  get headers(): HeaderDictionary {
    return this._feature().headers;
  }

  get contentType(): string | undefined {
    return this._feature().headers.get("content-type");
  }

  get contentLength(): number | undefined {
    const value = this._feature().headers.get("content-length");
    return value === undefined ? undefined : Number(value);
  }

  /** The body as a stream of chunks; it can be read once. */
  get body(): AsyncIterable<Uint8Array> {
    return this._feature().body;
  }
  set body(value: AsyncIterable<Uint8Array>) {
    this._feature().body = value;
  }

  /** The whole body as bytes. */
  bytes(): Promise<Buffer> {
    return readAll(this.body);
  }

  /** The whole body decoded as UTF-8. */
  async text(): Promise<string> {
    return (await readAll(this.body)).toString("utf8");
  }

  /** The whole body parsed as JSON; invalid JSON is a 400 (PEREGRINE_INVALID_JSON). */
  async json<T = unknown>(): Promise<T> {
    return parseJson<T>(await this.text());
  }
}

export class HttpResponse {
  private readonly _ctx: HttpContext;

  constructor(ctx: HttpContext) {
    this._ctx = ctx;
  }

  private _feature(): IHttpResponseFeature {
    return this._ctx.responseFeature();
  }

  private _body(): IHttpResponseBodyFeature {
    return this._ctx.bodyFeature();
  }

  get statusCode(): number {
    return this._feature().statusCode;
  }
  set statusCode(value: number) {
    this._feature().statusCode = value;
  }

  get reasonPhrase(): string | undefined {
    return this._feature().reasonPhrase;
  }
  set reasonPhrase(value: string | undefined) {
    this._feature().reasonPhrase = value;
  }

  get headers(): HeaderDictionary {
    return this._feature().headers;
  }

  get contentType(): string | undefined {
    return this._feature().headers.get("content-type");
  }
  set contentType(value: string | undefined) {
    if (value === undefined) this._feature().headers.delete("content-type");
    else this._feature().headers.set("content-type", value);
  }

  /** True once the headers were sent; they are read-only from then on. */
  get hasStarted(): boolean {
    return this._feature().hasStarted;
  }

  /** Writes a chunk; resolves when more may be written (backpressure). */
  write(chunk: BodyChunk): Promise<void> {
    return this._body().write(chunk);
  }

  /** Ends the response, with an optional last chunk. */
  end(chunk?: BodyChunk): Promise<void> {
    return this._body().complete(chunk);
  }

  /** Sends the headers now, without a body chunk. */
  start(): Promise<void> {
    return this._body().start();
  }

  onStarting(callback: () => void | Promise<void>): void {
    this._feature().onStarting(callback);
  }

  onCompleted(callback: () => void | Promise<void>): void {
    this._feature().onCompleted(callback);
  }

  /** Sends a redirect: 302, or 301 when permanent. */
  redirect(location: string, permanent = false): void {
    this.statusCode = permanent ? 301 : 302;
    this._feature().headers.set("location", location);
  }
}

/** The connection a request arrived on. */
export class ConnectionInfo {
  private readonly _features: IFeatureCollection;
  constructor(features: IFeatureCollection) {
    this._features = features;
  }
  private _feature() {
    return need(this._features, IHttpConnectionFeature);
  }
  get id(): string {
    return this._feature().connectionId;
  }
  get remoteAddress(): string {
    return this._feature().remoteAddress;
  }
  set remoteAddress(value: string) {
    this._feature().remoteAddress = value;
  }
  get remotePort(): number {
    return this._feature().remotePort;
  }
  set remotePort(value: number) {
    this._feature().remotePort = value;
  }
  get localAddress(): string {
    return this._feature().localAddress;
  }
  get localPort(): number {
    return this._feature().localPort;
  }
}
