import type { ServerOptions } from "node:http";
import type { SecureServerOptions, ServerHttp2Session } from "node:http2";
import type { ServerLimits } from "../../server/limits.js";

/**
 * Maps Peregrine's limits onto node's server options, for the limits node can enforce.
 * docs/servers.md lists, per limit, what NodeServer does and what it cannot.
 * maxRequestBodySize is not here: NodeServer enforces it while the body is read.
 */
export function httpServerOptions(limits: ServerLimits): ServerOptions {
  return {
    // The request head must fit in the buffer, as with hyper's max_buf_size (at least 8 KiB there too).
    maxHeaderSize: Math.max(limits.maxRequestBufferSize, 8192),
    // Streamed responses wait on `drain` once this much is queued.
    highWaterMark: limits.maxResponseBufferSize,
  };
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
    // The most header fields that fit in maxRequestHeaderFieldSize (HPACK counts 32 bytes of overhead per field).
    maxHeaderListPairs: Math.max(4, Math.floor(h2.maxRequestHeaderFieldSize / 32)),
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
