import { ErrorCodes, PeregrineError } from "../errors.js";

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
}

export const DEFAULT_LIMITS: Readonly<ServerLimits> = Object.freeze({
  maxRequestBodySize: 30_000_000,
  maxRequestBufferSize: 1_048_576,
  maxResponseBufferSize: 65_536,
});

function invalid(name: string, value: unknown, rule: string): PeregrineError {
  return new PeregrineError(
    ErrorCodes.INVALID_OPTION,
    `limits.${name} = ${typeof value === "string" ? JSON.stringify(value) : String(value)} is invalid: ${rule}`,
  );
}

function bytes(name: string, value: unknown, nullable: boolean, min = 0): number | null {
  if (value === null && nullable) return null;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > Number.MAX_SAFE_INTEGER) {
    throw invalid(name, value, `expected a whole number of bytes >= ${min}${nullable ? ", or null for no limit" : ""}`);
  }
  return value;
}

/** Fills defaults and checks every given limit; unknown keys are errors. */
export function resolveLimits(given: Partial<ServerLimits> | undefined): ServerLimits {
  if (given === undefined) return { ...DEFAULT_LIMITS };
  if (given === null || typeof given !== "object") {
    throw new PeregrineError(ErrorCodes.INVALID_OPTION, `limits must be an object, not ${String(given)}`);
  }
  for (const key of Object.keys(given)) {
    if (!(key in DEFAULT_LIMITS)) throw invalid(key, (given as Record<string, unknown>)[key], "unknown limit");
  }
  const pick = <K extends keyof ServerLimits>(key: K): unknown => (given[key] === undefined ? DEFAULT_LIMITS[key] : given[key]);
  return {
    maxRequestBodySize: bytes("maxRequestBodySize", pick("maxRequestBodySize"), true),
    maxRequestBufferSize: bytes("maxRequestBufferSize", pick("maxRequestBufferSize"), false, 1024) as number,
    maxResponseBufferSize: bytes("maxResponseBufferSize", pick("maxResponseBufferSize"), false, 1) as number,
  };
}
