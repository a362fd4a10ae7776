import fs from "node:fs";
import path from "node:path";
import { describeValue, ErrorCodes, InvalidOptionError, PeregrineError } from "../errors.js";
import { createConsoleLogger, type Logger } from "../logging.js";
import { resolveShutdownTimeout } from "../server/limits.js";
import type { TlsOptions } from "../server/tls.js";

/** Options of startHost() and `peregrine host`; docs/hosting.md documents each with its default. */
export interface HostOptions {
  /** The app's entry script (a .js or .mjs file); its folder is where app_offline.html is looked for. */
  app: string;
  /** The public URLs the host listens on (http and https; port 0 picks a free port). */
  urls: string[];
  /** Starts the app when the host starts, not on the first request. Default false. */
  eager?: boolean;
  /** App failures a minute that are restarted; one more gets 502 until the minute passes. Default 10. */
  rapidFailsPerMinute?: number;
  /** Milliseconds the app has to start listening before the host stops it and answers 502. Default 120000. */
  startupTimeLimit?: number;
  /** Milliseconds in-flight requests get on stop, and the app gets after SIGTERM before SIGKILL. Default 30000. */
  shutdownTimeout?: number;
  /** Environment variables for the app, on top of the host's own. */
  env?: Record<string, string>;
  /** Certificates for the https public URLs (docs/tls.md). */
  tls?: TlsOptions;
  /** Where the host's log and the app's output go. Default: the console. */
  logger?: Logger;
}

export interface ResolvedHostOptions {
  entry: string;
  folder: string;
  urls: string[];
  eager: boolean;
  rapidFailsPerMinute: number;
  startupTimeLimit: number;
  shutdownTimeout: number;
  env: Record<string, string>;
  tls: TlsOptions | undefined;
  logger: Logger;
}

export const DEFAULT_RAPID_FAILS_PER_MINUTE = 10;
export const DEFAULT_STARTUP_TIME_LIMIT = 120_000;

const KNOWN = new Set([
  "app",
  "urls",
  "eager",
  "rapidFailsPerMinute",
  "startupTimeLimit",
  "shutdownTimeout",
  "env",
  "tls",
  "logger",
]);

const MAX_MS = 2 ** 31 - 1;

function wholeNumber(name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(name, value, `expected a whole number from ${min} to ${max}`);
  }
  return value;
}

function entryOf(app: unknown): string {
  if (typeof app !== "string" || app === "") {
    throw new InvalidOptionError("app", app, "expected the path of the app's entry script");
  }
  const entry = path.resolve(app);
  if (!fs.statSync(entry, { throwIfNoEntry: false })?.isFile()) {
    throw new InvalidOptionError(
      "app",
      app,
      `no file at ${entry}: give the app's entry script (the .js file node runs)`,
    );
  }
  return entry;
}

function urlsOf(urls: unknown): string[] {
  if (!Array.isArray(urls) || urls.length === 0 || urls.some((u) => typeof u !== "string" || u === "")) {
    throw new InvalidOptionError("urls", urls, 'expected the public URLs as a non-empty array, e.g. ["http://*:8080"]');
  }
  return [...urls];
}

function envOf(env: unknown): Record<string, string> {
  if (env === undefined) return {};
  if (
    typeof env !== "object" ||
    env === null ||
    Array.isArray(env) ||
    Object.values(env).some((v) => typeof v !== "string")
  ) {
    throw new InvalidOptionError("env", env, "expected an object of string values");
  }
  return { ...(env as Record<string, string>) };
}

/** Checks startHost()'s options and fills in the defaults; the message names what was wrong. */
export function resolveHostOptions(options: HostOptions): ResolvedHostOptions {
  if (options === null || typeof options !== "object") {
    throw new InvalidOptionError("host options", options, "expected an object with app and urls");
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) {
      throw new PeregrineError(
        ErrorCodes.INVALID_OPTION,
        `unknown host option ${describeValue(key)} (known: ${[...KNOWN].join(", ")})`,
      );
    }
  }
  if (options.eager !== undefined && typeof options.eager !== "boolean") {
    throw new InvalidOptionError("eager", options.eager, "expected true or false");
  }
  const entry = entryOf(options.app);
  return {
    entry,
    folder: path.dirname(entry),
    urls: urlsOf(options.urls),
    eager: options.eager ?? false,
    rapidFailsPerMinute: wholeNumber(
      "rapidFailsPerMinute",
      options.rapidFailsPerMinute,
      DEFAULT_RAPID_FAILS_PER_MINUTE,
      0,
      MAX_MS,
    ),
    startupTimeLimit: wholeNumber("startupTimeLimit", options.startupTimeLimit, DEFAULT_STARTUP_TIME_LIMIT, 1, MAX_MS),
    shutdownTimeout: resolveShutdownTimeout(options.shutdownTimeout),
    env: envOf(options.env),
    // WebApplication checks the TLS option's shape and content.
    tls: options.tls,
    logger: options.logger ?? createConsoleLogger(),
  };
}
