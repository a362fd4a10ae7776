import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import type { Readable } from "node:stream";
import { ErrorCodes, PeregrineError } from "../../errors.js";
import type { IHttpRequestFeature } from "../../features/index.js";
import { HeaderDictionary } from "../../http/headers.js";
import { splitTarget } from "../../http/target.js";
import type { BodyReader, RequestBody } from "../request-body.js";

export type NodeRequest = IncomingMessage | Http2ServerRequest;

/** Request headers built from `rawHeaders` the first time anything reads them, repeats kept apart. */
class NodeRequestHeaders extends HeaderDictionary {
  readonly #raw: string[];
  constructor(raw: string[]) {
    super();
    this.#raw = raw;
  }
  protected override load(): Map<string, string | string[]> {
    const map = new Map<string, string | string[]>();
    const raw = this.#raw;
    let authority: string | undefined;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = (raw[i] as string).toLowerCase();
      const value = raw[i + 1] as string;
      if (name.charCodeAt(0) === 58 /* ":" */) {
        // HTTP/2 pseudo-headers are surfaced by the request line fields, not as headers.
        if (name === ":authority") authority = value;
        continue;
      }
      const existing = map.get(name);
      if (existing === undefined) map.set(name, value);
      else if (typeof existing === "string") map.set(name, [existing, value]);
      else existing.push(value);
    }
    // HTTP/2 carries the host in :authority; surface it as Host, as HTTP/1.1 does.
    if (!map.has("host") && authority !== undefined) map.set("host", authority);
    return map;
  }
}

/**
 * Reads a Node.js Readable (an IncomingMessage or an Http2ServerRequest) one chunk at a
 * time in paused mode, so the stream's own buffer is the only read-ahead: a slow reader
 * pauses the socket (HTTP/1.1) or the stream's flow-control window (HTTP/2).
 */
export function readableBodyReader(stream: Readable): BodyReader {
  let pending: { resolve: (chunk: Uint8Array | null) => void; reject: (error: unknown) => void } | undefined;
  let cancelled = false;
  const settle = (chunk: Uint8Array | null, error?: unknown) => {
    const p = pending;
    if (p === undefined) return;
    pending = undefined;
    stream.off("readable", onReadable);
    stream.off("end", onEnd);
    stream.off("error", onError);
    stream.off("close", onClose);
    if (error !== undefined) p.reject(error);
    else p.resolve(chunk);
  };
  const onReadable = () => {
    const chunk = stream.read() as Uint8Array | null;
    if (chunk !== null) settle(chunk);
  };
  const onEnd = () => settle(null);
  const onError = (error: unknown) => settle(null, error);
  const onClose = () => {
    if (!stream.readableEnded) {
      settle(
        null,
        new PeregrineError(ErrorCodes.REQUEST_ABORTED, "the connection closed before the request body ended"),
      );
    }
  };
  return {
    read() {
      if (cancelled) return Promise.resolve(null);
      const chunk = stream.read() as Uint8Array | null;
      if (chunk !== null) return Promise.resolve(chunk);
      if (stream.readableEnded) return Promise.resolve(null);
      if (stream.errored) return Promise.reject(stream.errored);
      if (stream.destroyed) {
        return Promise.reject(
          new PeregrineError(ErrorCodes.REQUEST_ABORTED, "the connection closed before the request body ended"),
        );
      }
      return new Promise((resolve, reject) => {
        pending = { resolve, reject };
        stream.on("readable", onReadable);
        stream.on("end", onEnd);
        stream.on("error", onError);
        stream.on("close", onClose);
      });
    },
    cancel() {
      cancelled = true;
      settle(null);
    },
  };
}

/** Whether a request has no body at all, known from its head. */
export function hasNoBody(req: NodeRequest): boolean {
  if ("stream" in req && req.stream !== undefined) return req.stream.endAfterHeaders;
  const headers = req.headers;
  return (
    headers["transfer-encoding"] === undefined &&
    (headers["content-length"] === undefined || headers["content-length"] === "0")
  );
}

/** The Content-Length a request declared, if it declared a valid one. */
export function declaredLength(req: NodeRequest): number | undefined {
  const value = req.headers["content-length"];
  if (typeof value !== "string" || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

/** IHttpRequestFeature over a node:http or node:http2 request. */
export class NodeRequestFeature implements IHttpRequestFeature {
  protocol: string;
  scheme: string;
  method: string;
  pathBase = "";
  path: string;
  queryString: string;
  rawTarget: string;
  body: AsyncIterable<Uint8Array>;
  #headers: HeaderDictionary | undefined;
  readonly #req: NodeRequest;

  constructor(req: NodeRequest, https: boolean, body: RequestBody) {
    this.#req = req;
    const version = req.httpVersion;
    this.protocol = version === "2.0" ? "HTTP/2" : `HTTP/${version}`;
    this.scheme = https ? "https" : "http";
    this.method = req.method ?? "GET";
    this.rawTarget = req.url ?? "/";
    const { path, queryString } = splitTarget(this.rawTarget);
    this.path = path;
    this.queryString = queryString;
    this.body = body;
  }

  get headers(): HeaderDictionary {
    this.#headers ??= new NodeRequestHeaders(this.#req.rawHeaders);
    return this.#headers;
  }
  set headers(value: HeaderDictionary) {
    this.#headers = value;
  }
}
