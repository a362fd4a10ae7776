/**
 * The logger contract: pino's call shape (`logger.info(fields, message)`), so a pino
 * logger plugs in as it is. Levels below the configured one cost one comparison.
 */
export interface Logger {
  error(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
  info(fields: object, message?: string): void;
  debug(fields: object, message?: string): void;
}

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** True for the names of the levels. */
export function isLogLevel(value: string | undefined): value is LogLevel {
  return value !== undefined && Object.hasOwn(RANK, value);
}

/**
 * Logs to the console, one line per event. The level comes from the argument, then
 * `PEREGRINE_LOG_LEVEL`, then "info".
 */
export function createConsoleLogger(level?: LogLevel): Logger {
  const env = process.env.PEREGRINE_LOG_LEVEL;
  const min = RANK[level ?? (isLogLevel(env) ? env : "info")];
  const emit = (rank: number, label: string, write: (line: string) => void) => (fields: object, message?: string) => {
    if (rank < min) return;
    const err = (fields as { err?: unknown }).err;
    const rest = Object.entries(fields).filter(([k]) => k !== "err");
    const detail = rest.length > 0 ? ` ${rest.map(([k, v]) => `${k}=${String(v)}`).join(" ")}` : "";
    write(`${label}: ${message ?? ""}${detail}${err instanceof Error ? `\n${err.stack ?? err.message}` : ""}`);
  };
  return {
    error: emit(RANK.error, "fail", (l) => console.error(l)),
    warn: emit(RANK.warn, "warn", (l) => console.warn(l)),
    info: emit(RANK.info, "info", (l) => console.log(l)),
    debug: emit(RANK.debug, "dbug", (l) => console.log(l)),
  };
}

/** A logger that discards everything. */
export const silentLogger: Logger = {
  error() {},
  warn() {},
  info() {},
  debug() {},
};
