/**
 * Errors a user can meet carry a stable `code` (search for it in docs/errors.md) and a
 * message that names the input that was wrong and what to do.
 */
export const ErrorCodes = {
  /** An option given to WebApplication.create() or a server is invalid. */
  INVALID_OPTION: "PEREGRINE_INVALID_OPTION",
  /** A configuration source (peregrine.json, an environment variable, an argument) is invalid. */
  INVALID_CONFIG: "PEREGRINE_INVALID_CONFIG",
  /** An endpoint URL cannot be parsed. */
  INVALID_URL: "PEREGRINE_INVALID_URL",
  /** An option of useForwardedHeaders() is invalid (a proxy address, a CIDR network, the limit). */
  INVALID_FORWARDED_HEADERS_OPTION: "PEREGRINE_INVALID_FORWARDED_HEADERS_OPTION",
  /** An endpoint URL has a scheme other than http or https, or https without TLS. */
  UNSUPPORTED_SCHEME: "PEREGRINE_UNSUPPORTED_SCHEME",
  /** Another process already listens on an endpoint's address. */
  ADDRESS_IN_USE: "PEREGRINE_ADDRESS_IN_USE",
  /** An endpoint's address does not exist on this machine. */
  ADDRESS_NOT_AVAILABLE: "PEREGRINE_ADDRESS_NOT_AVAILABLE",
  /** Binding an endpoint failed for another reason (permissions, descriptors). */
  BIND_FAILED: "PEREGRINE_BIND_FAILED",
  /** A worker thread of the `workers` option failed to start or attach. */
  WORKER_FAILED: "PEREGRINE_WORKER_FAILED",
  /** There were no URLs or endpoints to listen on. */
  NO_ENDPOINTS: "PEREGRINE_NO_ENDPOINTS",
  /** The application was started twice, or changed after it started. */
  ALREADY_STARTED: "PEREGRINE_ALREADY_STARTED",
  /** A route template is malformed. */
  INVALID_ROUTE: "PEREGRINE_INVALID_ROUTE",
  /** A header name or value contains characters HTTP does not allow. */
  INVALID_HEADER: "PEREGRINE_INVALID_HEADER",
  /** A status code outside 100-999, or an informational one used as final. */
  INVALID_STATUS: "PEREGRINE_INVALID_STATUS",
  /** Headers or status changed after the response started. */
  RESPONSE_STARTED: "PEREGRINE_RESPONSE_STARTED",
  /** upgrade() on a request that is not an HTTP/1.1 upgrade request. */
  NOT_UPGRADABLE: "PEREGRINE_NOT_UPGRADABLE",
  /** upgrade() refused: limits.maxConcurrentUpgradedConnections upgraded connections are open. */
  UPGRADE_LIMIT: "PEREGRINE_UPGRADE_LIMIT",
  /** The request body was read twice. */
  BODY_CONSUMED: "PEREGRINE_BODY_CONSUMED",
  /** The request body exceeded maxRequestBodySize (answered with 413). */
  MAX_REQUEST_BODY_SIZE: "PEREGRINE_MAX_REQUEST_BODY_SIZE",
  /** The client sent the request body slower than minRequestBodyDataRate (answered with 408). */
  MIN_REQUEST_BODY_DATA_RATE: "PEREGRINE_MIN_REQUEST_BODY_DATA_RATE",
  /** Reading the request body failed: the client broke off or sent bad framing. */
  BODY_READ_FAILED: "PEREGRINE_BODY_READ_FAILED",
  /** The client went away; the request was aborted. */
  REQUEST_ABORTED: "PEREGRINE_REQUEST_ABORTED",
  /** The request body was not valid JSON (answered with 400). */
  INVALID_JSON: "PEREGRINE_INVALID_JSON",
  /** Request trailers were read before the request body ended. */
  TRAILERS_NOT_AVAILABLE: "PEREGRINE_TRAILERS_NOT_AVAILABLE",
  /** An https endpoint has no certificate: set the tls option. */
  TLS_NOT_CONFIGURED: "PEREGRINE_TLS_NOT_CONFIGURED",
  /** tls.cert (or an SNI cert) is not valid PEM or not a valid X.509 certificate. */
  TLS_INVALID_CERTIFICATE: "PEREGRINE_TLS_INVALID_CERTIFICATE",
  /** tls.key (or an SNI key) is not a usable PEM private key. */
  TLS_INVALID_KEY: "PEREGRINE_TLS_INVALID_KEY",
  /** A private key does not belong to its certificate. */
  TLS_KEY_MISMATCH: "PEREGRINE_TLS_KEY_MISMATCH",
  /** A certificate in a chain has expired. */
  TLS_CERTIFICATE_EXPIRED: "PEREGRINE_TLS_CERTIFICATE_EXPIRED",
  /** tls.ca is not valid PEM or holds no usable trust root. */
  TLS_INVALID_CA: "PEREGRINE_TLS_INVALID_CA",
  /** The native addon could not be loaded on this platform. */
  NATIVE_UNAVAILABLE: "PEREGRINE_NATIVE_UNAVAILABLE",
  /** A request was sent to a TestServer before the app started. */
  SERVER_NOT_STARTED: "PEREGRINE_SERVER_NOT_STARTED",
  /** A request was sent to a TestServer after stop() began. */
  SERVER_STOPPED: "PEREGRINE_SERVER_STOPPED",
  /** `peregrine host`: the app exited before it listened on PEREGRINE_PORT (answered with 502). */
  HOST_APP_START_FAILED: "PEREGRINE_HOST_APP_START_FAILED",
  /** `peregrine host`: the app did not listen within startupTimeLimit (answered with 502). */
  HOST_STARTUP_TIME_LIMIT: "PEREGRINE_HOST_STARTUP_TIME_LIMIT",
  /** `peregrine host`: the app failed more than rapidFailsPerMinute times in a minute (502 until it passes). */
  HOST_RAPID_FAILS: "PEREGRINE_HOST_RAPID_FAILS",
  /** `peregrine host`: forwarding to the app failed before its response started (answered with 502). */
  HOST_APP_UNREACHABLE: "PEREGRINE_HOST_APP_UNREACHABLE",
  /** `peregrine host`: app_offline.html is in the app's folder (answered with 503 and the file). */
  HOST_APP_OFFLINE: "PEREGRINE_HOST_APP_OFFLINE",
  /** `peregrine host`: too many requests are waiting for the app to start (answered with 503). */
  HOST_QUEUE_FULL: "PEREGRINE_HOST_QUEUE_FULL",
  /** `peregrine host`: the host is shutting down and starts no app (answered with 503). */
  HOST_STOPPED: "PEREGRINE_HOST_STOPPED",
  /** An app behind `peregrine host` got a request without the right x-peregrine-token (answered with 400). */
  HOST_TOKEN_INVALID: "PEREGRINE_HOST_TOKEN_INVALID",
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/**
 * A value as an error message shows it: strings quoted, objects as JSON where they can
 * be. Never throws, whatever the value (BigInt, cycles, null-prototype objects).
 */
export function describeValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "object" && value !== null) {
    try {
      return JSON.stringify(value) ?? Object.prototype.toString.call(value);
    } catch {
      return Object.prototype.toString.call(value);
    }
  }
  return String(value);
}

export class PeregrineError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PeregrineError";
    this.code = code;
  }
}

/**
 * An option with an invalid value. It keeps the option's path, the value and the rule,
 * so configuration can say the same about the file or variable the value came from.
 */
export class InvalidOptionError extends PeregrineError {
  readonly option: string;
  readonly value: unknown;
  readonly rule: string;
  constructor(option: string, value: unknown, rule: string) {
    super(ErrorCodes.INVALID_OPTION, `${option} = ${describeValue(value)} is invalid: ${rule}`);
    this.name = "InvalidOptionError";
    this.option = option;
    this.value = value;
    this.rule = rule;
  }
}

/**
 * A request the server refuses for the client's fault; `statusCode` is what the client
 * gets if the response has not started (Kestrel's BadHttpRequestException).
 */
export class BadHttpRequestError extends PeregrineError {
  readonly statusCode: number;
  constructor(code: string, statusCode: number, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = "BadHttpRequestError";
    this.statusCode = statusCode;
  }
}

/** The native core reports errors as "CODE: message"; this restores `code`. */
export function fromNativeError(error: unknown): unknown {
  if (!(error instanceof Error) || error instanceof PeregrineError) return error;
  const match = /^(PEREGRINE_[A-Z_]+): ([\s\S]*)$/.exec(error.message);
  if (!match) return error;
  return new PeregrineError(match[1] as string, match[2] as string, { cause: error });
}
