import { ErrorCodes, InvalidOptionError, PeregrineError } from "../errors.js";

/**
 * Server limits, with Kestrel's defaults. docs/limits.md is the reference; each entry
 * there matches one field here.
 */
export interface ServerLimits {
  /** Largest request body in bytes, or null for no limit. Default 30,000,000. Exceeded: 413. */
  maxRequestBodySize: number | null;
  /** Bytes buffered while reading a request head. Default 1,048,576 (1 MiB). */
  maxRequestBufferSize: number;
  /** Bytes of a streamed response buffered before writes wait. Default 65,536 (64 KiB). */
  maxResponseBufferSize: number;
  /** Open connections at most, or null for no limit; more are closed at accept. Default null. */
  maxConcurrentConnections: number | null;
  /**
   * Upgraded (101) connections at most, or null for no limit; counted apart from
   * maxConcurrentConnections. Past it, upgrade() is refused. Default null.
   */
  maxConcurrentUpgradedConnections: number | null;
  /** Longest request line, bytes. Default 8192. Exceeded: 414. */
  maxRequestLineSize: number;
  /** Most header fields in a request. Default 100. Exceeded: 431. */
  maxRequestHeaderCount: number;
  /** Largest header section, bytes. Default 32,768. Exceeded: 431. */
  maxRequestHeadersTotalSize: number;
  /** Milliseconds an idle keep-alive connection stays open. Default 130,000. */
  keepAliveTimeout: number;
  /** Milliseconds a request head may take to arrive once it started. Default 30,000. Exceeded: 408. */
  requestHeadersTimeout: number;
  /**
   * Slowest acceptable request body, or null for no check. Default 240 bytes/s after a
   * 5,000 ms grace period. Below it, reading fails and the client gets 408.
   */
  minRequestBodyDataRate: MinDataRate | null;
  /**
   * Slowest acceptable reader while responses wait to be sent, or null for no check.
   * Default 240 bytes/s after a 5,000 ms grace period. Below it, the connection is aborted.
   */
  minResponseDataRate: MinDataRate | null;
  /** HTTP/2 settings (Kestrel's Http2Limits). */
  http2: Http2Limits;
}

/** A minimum data rate (Kestrel's MinDataRate). */
export interface MinDataRate {
  /** Bytes per second, averaged, after the grace period. */
  bytesPerSecond: number;
  /** Milliseconds before the rate is enforced. */
  gracePeriod: number;
}

/** HTTP/2 settings, with Kestrel's defaults; docs/limits.md has one row per field. */
export interface Http2Limits {
  /** SETTINGS_MAX_CONCURRENT_STREAMS: streams open at once per connection. Default 100. */
  maxStreamsPerConnection: number;
  /** SETTINGS_HEADER_TABLE_SIZE: the HPACK dynamic table, bytes. Default 4096. */
  headerTableSize: number;
  /** SETTINGS_MAX_FRAME_SIZE: largest frame payload the server accepts, bytes. Default 16,384. */
  maxFrameSize: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE: the decoded request header block, bytes. Default 32,768. */
  maxRequestHeaderFieldSize: number;
  /** The connection's receive window, bytes. Default 1,048,576 (1 MiB). */
  initialConnectionWindowSize: number;
  /** Each stream's receive window, bytes. Default 786,432 (768 KiB). */
  initialStreamWindowSize: number;
  /** Milliseconds between keep-alive PINGs, or null for none. Default null. */
  keepAlivePingDelay: number | null;
  /** Milliseconds a PING may go unanswered before the connection is closed. Default 20,000. */
  keepAlivePingTimeout: number;
}

export const DEFAULT_HTTP2_LIMITS: Readonly<Http2Limits> = Object.freeze({
  maxStreamsPerConnection: 100,
  headerTableSize: 4096,
  maxFrameSize: 16_384,
  maxRequestHeaderFieldSize: 32_768,
  initialConnectionWindowSize: 1_048_576,
  initialStreamWindowSize: 786_432,
  keepAlivePingDelay: null,
  keepAlivePingTimeout: 20_000,
});

/** What the `limits` option takes: any subset, with any subset of `http2`. */
export type LimitsOptions = { [K in keyof ServerLimits]?: K extends "http2" ? Partial<Http2Limits> : ServerLimits[K] };

export const DEFAULT_LIMITS: Readonly<ServerLimits> = Object.freeze({
  maxRequestBodySize: 30_000_000,
  maxRequestBufferSize: 1_048_576,
  maxResponseBufferSize: 65_536,
  maxConcurrentConnections: null,
  maxConcurrentUpgradedConnections: null,
  maxRequestLineSize: 8192,
  maxRequestHeaderCount: 100,
  maxRequestHeadersTotalSize: 32_768,
  keepAliveTimeout: 130_000,
  requestHeadersTimeout: 30_000,
  minRequestBodyDataRate: Object.freeze({ bytesPerSecond: 240, gracePeriod: 5000 }),
  minResponseDataRate: Object.freeze({ bytesPerSecond: 240, gracePeriod: 5000 }),
  http2: DEFAULT_HTTP2_LIMITS,
});

function invalid(name: string, value: unknown, rule: string): InvalidOptionError {
  return new InvalidOptionError(`limits.${name}`, value, rule);
}

function bytes(name: string, value: unknown, nullable: boolean, min = 0): number | null {
  if (value === null && nullable) return null;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > Number.MAX_SAFE_INTEGER) {
    throw invalid(name, value, `expected a whole number of bytes >= ${min}${nullable ? ", or null for no limit" : ""}`);
  }
  return value;
}

function whole(name: string, value: unknown, min: number, max: number, unit: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(name, value, `expected a whole number of ${unit} from ${min} to ${max}`);
  }
  return value;
}

function dataRate(name: string, value: unknown): MinDataRate | null {
  if (value === null) return null;
  const rule = "expected { bytesPerSecond: number > 0, gracePeriod: milliseconds >= 0 }, or null to turn the check off";
  if (typeof value !== "object") throw invalid(name, value, rule);
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) {
    if (key !== "bytesPerSecond" && key !== "gracePeriod") throw invalid(`${name}.${key}`, v[key], "unknown field");
  }
  const rate = v.bytesPerSecond;
  if (typeof rate !== "number" || !Number.isFinite(rate) || rate <= 0)
    throw invalid(`${name}.bytesPerSecond`, rate, rule);
  return {
    bytesPerSecond: rate,
    gracePeriod: whole(`${name}.gracePeriod`, v.gracePeriod, 0, 2 ** 31 - 1, "milliseconds"),
  };
}

const MAX_WINDOW = 2 ** 31 - 1;

/** Checks limits.http2 (Kestrel's ranges) and fills its defaults. */
function resolveHttp2Limits(given: unknown): Http2Limits {
  if (given === undefined) return { ...DEFAULT_HTTP2_LIMITS };
  if (given === null || typeof given !== "object") throw invalid("http2", given, "expected an object");
  const g = given as Record<string, unknown>;
  for (const key of Object.keys(g)) {
    // Own keys only: `in` would let "constructor" or "toString" through.
    if (!Object.hasOwn(DEFAULT_HTTP2_LIMITS, key)) throw invalid(`http2.${key}`, g[key], "unknown limit");
  }
  const pick = (key: keyof Http2Limits): unknown => (g[key] === undefined ? DEFAULT_HTTP2_LIMITS[key] : g[key]);
  const delay = pick("keepAlivePingDelay");
  return {
    maxStreamsPerConnection: whole(
      "http2.maxStreamsPerConnection",
      pick("maxStreamsPerConnection"),
      1,
      2 ** 32 - 1,
      "streams",
    ),
    headerTableSize: whole("http2.headerTableSize", pick("headerTableSize"), 0, 2 ** 32 - 1, "bytes"),
    maxFrameSize: whole("http2.maxFrameSize", pick("maxFrameSize"), 16_384, 16_777_215, "bytes"),
    maxRequestHeaderFieldSize: whole(
      "http2.maxRequestHeaderFieldSize",
      pick("maxRequestHeaderFieldSize"),
      1,
      2 ** 32 - 1,
      "bytes",
    ),
    initialConnectionWindowSize: whole(
      "http2.initialConnectionWindowSize",
      pick("initialConnectionWindowSize"),
      65_535,
      MAX_WINDOW,
      "bytes",
    ),
    initialStreamWindowSize: whole(
      "http2.initialStreamWindowSize",
      pick("initialStreamWindowSize"),
      65_535,
      MAX_WINDOW,
      "bytes",
    ),
    keepAlivePingDelay:
      delay === null
        ? null
        : whole("http2.keepAlivePingDelay", delay, 1000, 2 ** 31 - 1, "milliseconds (or null for off)"),
    keepAlivePingTimeout: whole(
      "http2.keepAlivePingTimeout",
      pick("keepAlivePingTimeout"),
      1000,
      2 ** 31 - 1,
      "milliseconds",
    ),
  };
}

/** Fills defaults and checks every given limit; unknown keys are errors. */
export function resolveLimits(given: LimitsOptions | undefined): ServerLimits {
  if (given === undefined) return { ...DEFAULT_LIMITS, http2: { ...DEFAULT_HTTP2_LIMITS } };
  if (given === null || typeof given !== "object") {
    throw new PeregrineError(ErrorCodes.INVALID_OPTION, `limits must be an object, not ${String(given)}`);
  }
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(DEFAULT_LIMITS, key))
      throw invalid(key, (given as Record<string, unknown>)[key], "unknown limit");
  }
  const pick = <K extends keyof ServerLimits>(key: K): unknown =>
    (given as Record<string, unknown>)[key] === undefined
      ? DEFAULT_LIMITS[key]
      : (given as Record<string, unknown>)[key];
  return {
    maxRequestBodySize: bytes("maxRequestBodySize", pick("maxRequestBodySize"), true),
    maxRequestBufferSize: bytes("maxRequestBufferSize", pick("maxRequestBufferSize"), false, 1024) as number,
    maxResponseBufferSize: bytes("maxResponseBufferSize", pick("maxResponseBufferSize"), false, 1) as number,
    maxConcurrentConnections:
      pick("maxConcurrentConnections") === null
        ? null
        : whole(
            "maxConcurrentConnections",
            pick("maxConcurrentConnections"),
            1,
            2 ** 31 - 1,
            "connections (or null for no limit)",
          ),
    maxConcurrentUpgradedConnections:
      pick("maxConcurrentUpgradedConnections") === null
        ? null
        : whole(
            "maxConcurrentUpgradedConnections",
            pick("maxConcurrentUpgradedConnections"),
            1,
            2 ** 31 - 1,
            "connections (or null for no limit)",
          ),
    maxRequestLineSize: whole("maxRequestLineSize", pick("maxRequestLineSize"), 16, 2 ** 31 - 1, "bytes"),
    maxRequestHeaderCount: whole("maxRequestHeaderCount", pick("maxRequestHeaderCount"), 1, 2 ** 31 - 1, "fields"),
    maxRequestHeadersTotalSize: whole(
      "maxRequestHeadersTotalSize",
      pick("maxRequestHeadersTotalSize"),
      64,
      2 ** 31 - 1,
      "bytes",
    ),
    keepAliveTimeout: whole("keepAliveTimeout", pick("keepAliveTimeout"), 1, 2 ** 31 - 1, "milliseconds"),
    requestHeadersTimeout: whole(
      "requestHeadersTimeout",
      pick("requestHeadersTimeout"),
      1,
      2 ** 31 - 1,
      "milliseconds",
    ),
    minRequestBodyDataRate: dataRate("minRequestBodyDataRate", pick("minRequestBodyDataRate")),
    minResponseDataRate: dataRate("minResponseDataRate", pick("minResponseDataRate")),
    http2: resolveHttp2Limits(given.http2),
  };
}

/** The default of the top-level `shutdownTimeout` option, in milliseconds. */
export const DEFAULT_SHUTDOWN_TIMEOUT = 30_000;

/**
 * Checks the top-level `shutdownTimeout` option: whole milliseconds from 0 to 2^31-1
 * (the longest delay Node's timers honour), defaulting to 30,000.
 */
export function resolveShutdownTimeout(value: unknown): number {
  if (value === undefined) return DEFAULT_SHUTDOWN_TIMEOUT;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 2 ** 31 - 1) {
    throw new InvalidOptionError("shutdownTimeout", value, `expected whole milliseconds from 0 to ${2 ** 31 - 1}`);
  }
  return value;
}
