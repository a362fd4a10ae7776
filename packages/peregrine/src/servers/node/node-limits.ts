import type http from "node:http";
import type { ServerOptions } from "node:http";
import type { SecureServerOptions, ServerHttp2Session } from "node:http2";
import type { Server as NetServer } from "node:net";
import type { ServerLimits } from "../../server/limits.js";

/**
 * Maps Peregrine's limits onto node:http's server options, for the limits node can
 * enforce. docs/servers.md lists, per limit, what NodeServer does and what it cannot.
 * maxRequestBodySize is not here: NodeServer enforces it while the body is read.
 */
export function httpServerOptions(limits: ServerLimits): ServerOptions {
  const headersTimeout = limits.requestHeadersTimeout;
  // node counts the request line in maxHeaderSize; the native core bounds the head by
  // maxRequestBufferSize (at least 8 KiB) and the header section by maxRequestHeadersTotalSize.
  const headSize = Math.min(
    Math.max(limits.maxRequestBufferSize, 8192),
    limits.maxRequestHeadersTotalSize + limits.maxRequestLineSize,
  );
  return {
    maxHeaderSize: headSize,
    // Streamed responses wait on `drain` once this much is queued.
    highWaterMark: limits.maxResponseBufferSize,
    headersTimeout,
    // The native core has no deadline for a whole request; node's default (300 s) would cut off long uploads.
    requestTimeout: 0,
    keepAliveTimeout: limits.keepAliveTimeout,
    // node checks the timeouts above on this interval; a quarter of the deadline keeps them close.
    connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(headersTimeout / 4))),
    // One more than the limit, so that NodeServer sees an excess and answers 431 (node would drop the rest silently).
    maxHeadersCount: limits.maxRequestHeaderCount + 1,
  } as ServerOptions;
}

/** Limits node takes on the server object rather than as options. */
export function applyServerLimits(server: NetServer, limits: ServerLimits, http1Fallback: boolean): void {
  // node closes connections over maxConnections at accept, as the native core does.
  if (limits.maxConcurrentConnections !== null) server.maxConnections = limits.maxConcurrentConnections;
  if (http1Fallback) {
    // node:http2's HTTP/1.1 fallback (allowHTTP1) runs node:http's connection code, which
    // reads these from whatever server it serves; the headers timeout it cannot apply there.
    const options = httpServerOptions(limits);
    Object.assign(server, {
      maxHeaderSize: options.maxHeaderSize,
      keepAliveTimeout: options.keepAliveTimeout,
      maxHeadersCount: (options as { maxHeadersCount?: number }).maxHeadersCount ?? null,
    });
  }
}

/** A refusal: the status the client gets and the reason code in the log (docs/limits.md). */
export interface Refusal {
  status: number;
  reason: string;
}

/**
 * Checks a parsed HTTP/1.x request head against the limits node cannot apply while
 * parsing; returns the refusal, or undefined when the head is within them.
 */
export function headLimitStatus(req: http.IncomingMessage, limits: ServerLimits): Refusal | undefined {
  const line = (req.method?.length ?? 0) + 1 + (req.url?.length ?? 0) + 9;
  if (line > limits.maxRequestLineSize) return { status: 414, reason: "REQUEST_LINE_TOO_LONG" };
  if (req.rawHeaders.length / 2 > limits.maxRequestHeaderCount) return { status: 431, reason: "TOO_MANY_HEADERS" };
  let size = 0;
  // Each field line: name, ": ", value, CRLF.
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    size += (req.rawHeaders[i] as string).length + 2 + (req.rawHeaders[i + 1] as string).length + 2;
  }
  if (size > limits.maxRequestHeadersTotalSize) return { status: 431, reason: "HEADERS_TOO_LARGE" };
  return undefined;
}

/** node's parser errors, as the native server's refusals; undefined for a client that went away. */
export function clientErrorReason(
  code: string | undefined,
  detail: string | undefined,
  rawPacket?: Buffer,
): Refusal | undefined {
  switch (code) {
    case "ECONNRESET":
    case "EPIPE":
    case "HPE_INVALID_EOF_STATE": // the client closed mid-request
      return undefined;
    case "HPE_HEADER_OVERFLOW":
      return { status: 431, reason: "HEADERS_TOO_LARGE" };
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return { status: 408, reason: "REQUEST_HEADERS_TIMEOUT" };
    case "HPE_INVALID_VERSION":
      // llhttp refuses every version but 0.9, 1.0 and 1.1 alike; a well-formed one is 505, as from the native core.
      return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [^ \r\n]+ HTTP\/\d\.\d\r\n/.test(rawPacket?.toString("latin1") ?? "")
        ? { status: 505, reason: "HTTP_VERSION_NOT_SUPPORTED" }
        : { status: 400, reason: "BAD_REQUEST_LINE" };
    case "HPE_CR_EXPECTED":
    case "HPE_LF_EXPECTED":
      return { status: 400, reason: "BAD_REQUEST_BARE_LF" };
    case "HPE_INVALID_METHOD":
    case "HPE_INVALID_CONSTANT":
      return { status: 400, reason: "BAD_REQUEST_LINE" };
    case "HPE_INVALID_URL":
      return { status: 400, reason: "BAD_REQUEST_TARGET" };
    case "HPE_INVALID_HEADER_TOKEN":
      return { status: 400, reason: "BAD_REQUEST_HEADER_NAME" };
    case "HPE_INVALID_TRANSFER_ENCODING":
      // llhttp reports Transfer-Encoding beside Content-Length under this code too.
      return { status: 400, reason: /content-length/i.test(detail ?? "") ? "BAD_REQUEST_TE_CL" : "BAD_REQUEST_TE" };
    case "HPE_UNEXPECTED_CONTENT_LENGTH":
      return { status: 400, reason: "BAD_REQUEST_TE_CL" };
    case "HPE_INVALID_CONTENT_LENGTH":
      return { status: 400, reason: "BAD_REQUEST_CONTENT_LENGTH" };
    case "HPE_INVALID_CHUNK_SIZE":
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return { status: 400, reason: "BAD_REQUEST_CHUNK" };
    default:
      return { status: 400, reason: "BAD_REQUEST" };
  }
}

/** HTTP/2 settings from limits.http2, and the HTTP/1.1 limits for ALPN's http/1.1 fallback. */
export function http2ServerOptions(limits: ServerLimits): SecureServerOptions {
  const h2 = limits.http2;
  return {
    settings: {
      maxConcurrentStreams: h2.maxStreamsPerConnection,
      headerTableSize: h2.headerTableSize,
      maxFrameSize: h2.maxFrameSize,
      maxHeaderListSize: h2.maxRequestHeaderFieldSize,
      initialWindowSize: h2.initialStreamWindowSize,
    },
    // Header fields per stream: the request limit plus the four pseudo-headers. node refuses streams over it.
    maxHeaderListPairs: Math.max(4, limits.maxRequestHeaderCount + 4),
  };
}

/** Per-session limits node takes only on a live session: the connection window, keep-alive pings. */
export function applyHttp2Limits(session: ServerHttp2Session, limits: ServerLimits): void {
  const h2 = limits.http2;
  session.once("localSettings", () => {
    try {
      session.setLocalWindowSize(h2.initialConnectionWindowSize);
    } catch {
      // The session closed before its settings were acknowledged.
    }
  });
  const delay = h2.keepAlivePingDelay;
  if (delay === null) return;
  // Kestrel pings after `delay` without frames; node has no such hook, so this pings every `delay`.
  const timer = setInterval(() => {
    if (session.closed || session.destroyed) return;
    const deadline = setTimeout(() => session.destroy(), h2.keepAlivePingTimeout);
    deadline.unref();
    session.ping((error) => {
      clearTimeout(deadline);
      if (error !== null && !session.destroyed) session.destroy();
    });
  }, delay);
  timer.unref();
  session.once("close", () => clearInterval(timer));
}
