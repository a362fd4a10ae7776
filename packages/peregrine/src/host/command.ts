import fs from "node:fs";
import { parseArgs } from "node:util";
import { ErrorCodes, InvalidOptionError, PeregrineError } from "../errors.js";
import { createConsoleLogger } from "../logging.js";
import type { TlsOptions } from "../server/tls.js";
import { type HostOptions, startHost } from "./index.js";

export const HOST_USAGE = `Usage: peregrine host --app <entry.js> --urls <urls> [options]

Runs the app as a child process on a loopback port and serves it on the public URLs.

Options:
  --app <path>                    the app's entry script (required)
  --urls <urls>                   public URLs, ";"-separated or repeated (required)
  --eager                         start the app now, not on the first request
  --rapid-fails-per-minute <n>    app failures a minute that are restarted (default 10)
  --startup-time-limit <ms>       time the app has to start listening (default 120000)
  --shutdown-timeout <ms>         time requests and the app get to finish on stop (default 30000)
  --environment <name>            PEREGRINE_ENVIRONMENT for the app
  --tls-cert <path>               PEM certificate chain for https URLs
  --tls-key <path>                PEM private key for https URLs
  -h, --help                      show this help
`;

const FLAGS = {
  app: { type: "string" },
  urls: { type: "string", multiple: true },
  eager: { type: "boolean" },
  "rapid-fails-per-minute": { type: "string" },
  "startup-time-limit": { type: "string" },
  "shutdown-timeout": { type: "string" },
  environment: { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function wholeNumberFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new InvalidOptionError(`--${flag}`, value, "expected a whole number");
  return Number(value);
}

function readPem(flag: string, file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (error) {
    throw new InvalidOptionError(`--${flag}`, file, `the file cannot be read (${(error as Error).message})`);
  }
}

function tlsOf(cert: string | undefined, key: string | undefined): TlsOptions | undefined {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) {
    throw new PeregrineError(ErrorCodes.INVALID_OPTION, "--tls-cert and --tls-key go together: give both files");
  }
  return { cert: readPem("tls-cert", cert), key: readPem("tls-key", key) };
}

/** The host options `peregrine host` arguments stand for, or "help". */
export function parseHostArgs(argv: string[]): HostOptions | "help" {
  let values: ReturnType<typeof parseArgs<{ args: string[]; options: typeof FLAGS; strict: true }>>["values"];
  try {
    ({ values } = parseArgs({ args: argv, options: FLAGS, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new PeregrineError(ErrorCodes.INVALID_OPTION, (error as Error).message, { cause: error });
  }
  if (values.help === true) return "help";
  if (values.app === undefined) throw new PeregrineError(ErrorCodes.INVALID_OPTION, "--app <entry.js> is required");
  const urls = (values.urls ?? [])
    .flatMap((u) => u.split(";"))
    .map((u) => u.trim())
    .filter((u) => u !== "");
  if (urls.length === 0) throw new PeregrineError(ErrorCodes.INVALID_OPTION, "--urls <urls> is required");
  const options: HostOptions = { app: values.app, urls, eager: values.eager === true };
  const rapidFails = wholeNumberFlag("rapid-fails-per-minute", values["rapid-fails-per-minute"]);
  if (rapidFails !== undefined) options.rapidFailsPerMinute = rapidFails;
  const startupTimeLimit = wholeNumberFlag("startup-time-limit", values["startup-time-limit"]);
  if (startupTimeLimit !== undefined) options.startupTimeLimit = startupTimeLimit;
  const shutdownTimeout = wholeNumberFlag("shutdown-timeout", values["shutdown-timeout"]);
  if (shutdownTimeout !== undefined) options.shutdownTimeout = shutdownTimeout;
  if (values.environment !== undefined) options.env = { PEREGRINE_ENVIRONMENT: values.environment };
  const tls = tlsOf(values["tls-cert"], values["tls-key"]);
  if (tls !== undefined) options.tls = tls;
  return options;
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      resolve(signal);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}

function report(error: unknown): void {
  const code = error instanceof PeregrineError ? `${error.code}: ` : "";
  process.stderr.write(`peregrine host: ${code}${(error as Error).message}\n`);
}

/**
 * `peregrine host ...argv`: runs the host until SIGTERM or SIGINT, then stops it
 * gracefully. Returns the exit code: 0 after a clean stop, 2 for invalid arguments, 1
 * when the host cannot start.
 */
export async function hostCommand(argv: string[]): Promise<number> {
  let options: HostOptions | "help";
  try {
    options = parseHostArgs(argv);
  } catch (error) {
    report(error);
    process.stderr.write(`\n${HOST_USAGE}`);
    return 2;
  }
  if (options === "help") {
    process.stdout.write(HOST_USAGE);
    return 0;
  }
  const logger = createConsoleLogger();
  let host: Awaited<ReturnType<typeof startHost>>;
  try {
    host = await startHost({ ...options, logger });
  } catch (error) {
    report(error);
    return 1;
  }
  const signal = await untilSignal();
  logger.info({ signal }, "Shutting down: in-flight requests finish, then the application stops");
  await host.stop();
  return 0;
}
