import type { ServerOptions } from "node:http";
import type { ServerLimits } from "../../server/limits.js";

/**
 * Maps Peregrine's limits onto node:http's server options, for the limits node can
 * enforce. docs/servers.md lists, per limit, what NodeServer does and what it cannot.
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
