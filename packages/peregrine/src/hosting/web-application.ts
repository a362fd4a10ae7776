import path from "node:path";
import { describeValue, ErrorCodes, InvalidOptionError, PeregrineError } from "../errors.js";
import { IServerAddressesFeature } from "../features/index.js";
import { createConsoleLogger, type Logger } from "../logging.js";
import type { NativeServer } from "../native/native-server.js";
import { validateWorkers, workerServerOptions } from "../native/workers.js";
import { type EndpointOptions, validateEndpoints } from "../server/endpoints.js";
import { type LimitsOptions, resolveShutdownTimeout } from "../server/limits.js";
import type { IServer } from "../server/server.js";
import { type TlsOptions, toNativeTlsOptions } from "../server/tls.js";
import { isServerName, type ServerName, selectServer } from "../servers/select.js";
import { ApplicationBuilder } from "./application-builder.js";
import { DEFAULT_ENVIRONMENT, HostEnvironment } from "./environment.js";
import { HostingApplication } from "./hosting-application.js";
import { outOfProcessUrl, readOutOfProcessSettings, useOutOfProcessHosting } from "./out-of-process.js";
import { WebApplicationBuilder } from "./web-application-builder.js";

/** Options of WebApplication.create(). docs/options.md documents each with its default. */
export interface WebApplicationOptions {
  /**
   * Addresses to listen on. Default: `PEREGRINE_URLS` (";"-separated) when set, else
   * `http://localhost:5000`. Port 0 picks a free port; `app.urls` tells which.
   */
  urls?: string[];
  /**
   * The server implementation: "native" (the Rust core), "node" (node:http), or an
   * IServer instance such as a TestServer. Default: `PEREGRINE_SERVER` when set, else
   * "native", falling back to "node" with a warning when the native addon cannot load
   * (docs/servers.md).
   */
  server?: ServerName | IServer;
  /** Request and response limits (docs/limits.md). */
  limits?: LimitsOptions;
  /** Certificates for the https endpoints, SNI and client certificates (docs/tls.md). */
  tls?: TlsOptions;
  /**
   * Endpoints with options, listened on beside `urls`: `{ url, protocols }` where
   * protocols is "http1", "http2" or "http1AndHttp2" (default). When endpoints are
   * given and urls are not, the default URL is not used.
   */
  endpoints?: EndpointOptions[];
  /** Milliseconds in-flight requests get to finish on stop(). Default 30000. */
  shutdownTimeout?: number;
  /** Adds `Server: Peregrine` to responses. Default true. */
  addServerHeader?: boolean;
  /** Where logs go. Default: the console, at PEREGRINE_LOG_LEVEL or "info". */
  logger?: Logger;
  /** The environment's name (`app.environment`). Default: `PEREGRINE_ENVIRONMENT` when set, else "Production". */
  environment?: string;
  /** The app's folder, where createBuilder() reads peregrine.json. Default: the working directory. */
  contentRoot?: string;
  /**
   * Runs the pipeline in this many worker threads behind the native server's one
   * listener; each loads the app's module again. Default: none, the main thread serves.
   * docs/options.md, "workers".
   */
  workers?: number;
}

const KNOWN_OPTIONS = new Set([
  "urls",
  "server",
  "limits",
  "shutdownTimeout",
  "addServerHeader",
  "logger",
  "tls",
  "endpoints",
  "environment",
  "contentRoot",
  "workers",
]);

const LOG_METHODS = ["error", "warn", "info", "debug"] as const;

function invalidOption(message: string): PeregrineError {
  return new PeregrineError(ErrorCodes.INVALID_OPTION, message);
}

/** Checks options in code; configuration runs its values through here too (config/binder.ts). */
export function validateOptions(options: WebApplicationOptions): void {
  if (options === null || typeof options !== "object")
    throw invalidOption("WebApplication.create() takes an options object");
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw invalidOption(`unknown option "${key}"`);
  }
  if (options.urls !== undefined) {
    if (!Array.isArray(options.urls) || options.urls.some((u) => typeof u !== "string")) {
      throw invalidOption(`urls must be an array of strings, not ${describeValue(options.urls)}`);
    }
  }
  if (options.endpoints !== undefined) validateEndpoints(options.endpoints);
  if (options.tls !== undefined) toNativeTlsOptions(options.tls);
  resolveShutdownTimeout(options.shutdownTimeout);
  for (const key of ["environment", "contentRoot"] as const) {
    const value = options[key];
    if (value !== undefined && (typeof value !== "string" || value.trim() === "")) {
      throw new InvalidOptionError(key, value, "expected a non-empty string");
    }
  }
  if (options.addServerHeader !== undefined && typeof options.addServerHeader !== "boolean") {
    throw new InvalidOptionError("addServerHeader", options.addServerHeader, "expected true or false");
  }
  const logger: unknown = options.logger;
  if (
    logger !== undefined &&
    (typeof logger !== "object" ||
      logger === null ||
      LOG_METHODS.some((m) => typeof (logger as Record<string, unknown>)[m] !== "function"))
  ) {
    throw invalidOption(
      `logger = ${describeValue(logger)} is invalid: expected an object with ${LOG_METHODS.join(", ")} methods`,
    );
  }
  if (options.workers !== undefined) {
    validateWorkers(options.workers);
    if (options.server !== undefined && options.server !== "native") {
      throw new InvalidOptionError("workers", options.workers, 'needs the native server (server: "native" or unset)');
    }
  }
  const server = options.server;
  if (
    server !== undefined &&
    !isServerName(server) &&
    (typeof server !== "object" || server === null || typeof server.start !== "function")
  ) {
    throw new InvalidOptionError("server", server, 'expected "native", "node" or an IServer');
  }
}

/** `PEREGRINE_URLS` wins over the default; URLs given in code win over both. */
function resolveUrls(urls: string[] | undefined, hasEndpoints: boolean): string[] {
  if (urls !== undefined && urls.length > 0) return [...urls];
  // Endpoints given in code win over PEREGRINE_URLS and the default, as urls do.
  if (hasEndpoints) return [];
  const fromEnv = process.env.PEREGRINE_URLS;
  if (fromEnv !== undefined && fromEnv.trim() !== "") {
    return fromEnv
      .split(";")
      .map((u) => u.trim())
      .filter((u) => u !== "");
  }
  return ["http://localhost:5000"];
}

/**
 * The host: configure middleware and endpoints, then start a server with the pipeline.
 *
 *     const app = WebApplication.create();
 *     app.mapGet("/", () => "Hello, World!");
 *     await app.run();
 */
export class WebApplication extends ApplicationBuilder {
  readonly server: IServer;
  readonly logger: Logger;
  readonly environment: HostEnvironment;
  readonly #urls: string[];
  /** True on a worker thread of the `workers` option: the main thread listens and logs. */
  readonly #isWorker: boolean;
  #state: "created" | "starting" | "started" | "stopping" | "stopped" = "created";
  #stopping: Promise<void> | undefined;

  private constructor(options: WebApplicationOptions) {
    super();
    this.logger = options.logger ?? createConsoleLogger();
    this.environment = new HostEnvironment(
      options.environment ?? (process.env.PEREGRINE_ENVIRONMENT || DEFAULT_ENVIRONMENT),
      path.resolve(options.contentRoot ?? process.cwd()),
    );
    // Behind `peregrine host`, the app listens only where the host forwards (docs/hosting.md).
    const outOfProcess = readOutOfProcessSettings();
    this.#urls =
      outOfProcess !== undefined
        ? [outOfProcessUrl(outOfProcess)]
        : resolveUrls(options.urls, (options.endpoints?.length ?? 0) > 0);
    const workers = workerServerOptions(options.workers);
    this.#isWorker = workers !== undefined && "attach" in workers;
    if (this.#isWorker) this.#urls = [];
    const server = options.server;
    this.server =
      server === undefined || isServerName(server)
        ? selectServer(workers !== undefined ? "native" : server, {
            ...workers,
            ...(options.limits !== undefined ? { limits: options.limits } : {}),
            ...(options.tls !== undefined ? { tls: options.tls } : {}),
            ...(options.endpoints !== undefined && outOfProcess === undefined ? { endpoints: options.endpoints } : {}),
            ...(options.shutdownTimeout !== undefined ? { shutdownTimeout: options.shutdownTimeout } : {}),
            ...(options.addServerHeader !== undefined ? { addServerHeader: options.addServerHeader } : {}),
            logger: this.logger,
          })
        : server;
    if (outOfProcess !== undefined) useOutOfProcessHosting(this, outOfProcess, this.logger);
  }

  /** An app configured in code only: `options`, then PEREGRINE_URLS, PEREGRINE_SERVER and PEREGRINE_LOG_LEVEL. */
  static create(options: WebApplicationOptions = {}): WebApplication {
    validateOptions(options);
    return new WebApplication(options);
  }

  /**
   * A builder that reads peregrine.json, peregrine.{Environment}.json, PEREGRINE_*
   * variables and `args` (docs/configuration.md); `options` win over all of them.
   */
  static createBuilder(args: readonly string[] = [], options: WebApplicationOptions = {}): WebApplicationBuilder {
    return new WebApplicationBuilder(args, options);
  }

  /** The addresses the server listens on; once started, with port 0 resolved. */
  get urls(): string[] {
    const feature = this.server.features.get(IServerAddressesFeature);
    if (this.#state === "started" && feature !== undefined) return [...feature.addresses];
    return [...this.#urls];
  }

  /** Builds the pipeline and starts the server; resolves once it is listening. */
  async start(): Promise<void> {
    if (this.#state !== "created") {
      throw new PeregrineError(ErrorCodes.ALREADY_STARTED, `the application cannot start: it is ${this.#state}`);
    }
    this.#state = "starting";
    const feature = this.server.features.get(IServerAddressesFeature);
    if (feature !== undefined) feature.addresses.splice(0, feature.addresses.length, ...this.#urls);
    try {
      await this.server.start(new HostingApplication(this.build(), this.logger));
    } catch (error) {
      this.#state = "stopped";
      throw error;
    }
    this.#state = "started";
    if (this.#isWorker) return;
    for (const url of this.urls) this.logger.info({}, `Now listening on: ${url}`);
    this.logger.info({}, `Hosting environment: ${this.environment.name}`);
    this.logger.info({}, `Content root path: ${this.environment.contentRootPath}`);
  }

  /**
   * Swaps the TLS certificate set: connections opened from now on get `tls`, open ones
   * keep theirs. A bad certificate or key throws, and the current set stays in use.
   */
  reloadTls(tls: TlsOptions): void {
    const server = this.server as IServer & { reloadTls?: (tls: TlsOptions) => void };
    if (typeof server.reloadTls !== "function") {
      throw invalidOption("reloadTls() needs a server with TLS support (the native server)");
    }
    server.reloadTls(tls);
  }

  /** Stops gracefully: in-flight requests get shutdownTimeout to finish. */
  stop(signal?: AbortSignal): Promise<void> {
    if (this.#state === "created" || this.#state === "stopped") {
      this.#state = "stopped";
      return Promise.resolve();
    }
    this.#stopping ??= (async () => {
      this.#state = "stopping";
      if (!this.#isWorker) this.logger.info({}, "Application is shutting down...");
      await this.server.stop(signal);
      this.#state = "stopped";
    })();
    return this.#stopping;
  }

  /** Starts, waits for SIGINT or SIGTERM, then stops gracefully. */
  async run(): Promise<void> {
    await this.start();
    if (this.#isWorker) {
      // A worker's server ends when the main thread stops the listener.
      await (this.server as NativeServer).ended;
      await this.stop();
      return;
    }
    this.logger.info({}, "Application started. Press Ctrl+C to shut down.");
    await new Promise<void>((resolve) => {
      const onSignal = () => {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
        resolve();
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
    });
    await this.stop();
  }
}
