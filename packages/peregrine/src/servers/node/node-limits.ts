import type { ServerOptions } from "node:http";
import type http from "node:http";
import type { SecureServerOptions, ServerHttp2Session } from "node:http2";
import type { Server as NetServer } from "node:net";
import type { ServerLimits } from "../../server/limits.js";

/**
 * The edge-safety limits, read where present: ServerLimits gains them with the
 * edge-safety work, and this mapping takes each one as soon as it exists.
 */
type EdgeLimits = ServerLimits &
  Partial<{
    maxConcurrentConnections: number | null;
    maxRequestLineSize: number;
    maxRequestHeaderCount: number;
    maxRequestHeadersTotalSize: number;
    keepAliveTimeout: number;
    requestHeadersTimeout: number;
  }>;

/** Kestrel's defaults, for the limits ServerLimits does not carry yet. */
const KEEP_ALIVE_TIMEOUT = 130_000;
const REQUEST_HEADERS_TIMEOUT = 30_000;

export function keepAliveTimeout(limits: ServerLimits): number {
  return (limits as EdgeLimits).keepAliveTimeout ?? KEEP_ALIVE_TIMEOUT;
}

/**
 * Maps Peregrine's limits onto node:http's server options, for the limits node can
 * enforce. docs/servers.md lists, per limit, what NodeServer does and what it cannot.
 * maxRequestBodySize is not here: NodeServer enforces it while the body is read.
 */
export function httpServerOptions(limits: ServerLimits): ServerOptions {
  const l = limits as EdgeLimits;
  const headersTimeout = l.requestHeadersTimeout ?? REQUEST_HEADERS_TIMEOUT;
  // node counts the request line in maxHeaderSize; the native core bounds the head by
  // maxRequestBufferSize (at least 8 KiB) and the header section by maxRequestHeadersTotalSize.
  const headSize =
    l.maxRequestHeadersTotalSize !== undefined
      ? Math.min(Math.max(limits.maxRequestBufferSize, 8192), l.maxRequestHeadersTotalSize + (l.maxRequestLineSize ?? 8192))
      : Math.max(limits.maxRequestBufferSize, 8192);
  return {
    maxHeaderSize: headSize,
    // Streamed responses wait on `drain` once this much is queued.
    highWaterMark: limits.maxResponseBufferSize,
    headersTimeout,
    // The native core has no deadline for a whole request; node's default (300 s) would cut off long uploads.
    requestTimeout: 0,
    keepAliveTimeout: keepAliveTimeout(limits),
    // node checks the timeouts above on this interval; a quarter of the deadline keeps them close.
    connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(headersTimeout / 4))),
    // One more than the limit, so that NodeServer sees an excess and answers 431 (node would drop the rest silently).
    ...(l.maxRequestHeaderCount !== undefined ? { maxHeadersCount: l.maxRequestHeaderCount + 1 } : {}),
  } as ServerOptions;
}

/** Limits node takes on the server object rather than as options. */
export function applyServerLimits(server: NetServer, limits: ServerLimits): void {
  const max = (limits as EdgeLimits).maxConcurrentConnections;
  // node closes connections over maxConnections at accept, as the native core does.
  if (max !== undefined && max !== null) server.maxConnections = max;
}

/**
 * Checks a parsed HTTP/1.x request head against the limits node cannot apply while
 * parsing; returns the status to answer, or undefined when the head is within them.
 */
export function headLimitStatus(req: http.IncomingMessage, limits: ServerLimits): 414 | 431 | undefined {
  const l = limits as EdgeLimits;
  if (l.maxRequestLineSize !== undefined) {
    const line = (req.method?.length ?? 0) + 1 + (req.url?.length ?? 0) + 9;
    if (line > l.maxRequestLineSize) return 414;
  }
  if (l.maxRequestHeaderCount !== undefined && req.rawHeaders.length / 2 > l.maxRequestHeaderCount) return 431;
  if (l.maxRequestHeadersTotalSize !== undefined) {
    let size = 0;
    for (const field of req.rawHeaders) size += field.length + 2;
    if (size > l.maxRequestHeadersTotalSize) return 431;
  }
  return undefined;
}

/** HTTP/2 settings from limits.http2, and the HTTP/1.1 limits for ALPN's http/1.1 fallback. */
export function http2ServerOptions(limits: ServerLimits): SecureServerOptions {
  const h2 = limits.http2;
  const l = limits as EdgeLimits;
  return {
    settings: {
      maxConcurrentStreams: h2.maxStreamsPerConnection,
      headerTableSize: h2.headerTableSize,
      maxFrameSize: h2.maxFrameSize,
      maxHeaderListSize: h2.maxRequestHeaderFieldSize,
      initialWindowSize: h2.initialStreamWindowSize,
    },
    // Header fields per stream: the request limit plus the four pseudo-headers. node refuses streams over it.
    maxHeaderListPairs: Math.max(4, (l.maxRequestHeaderCount ?? 100) + 4),
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
