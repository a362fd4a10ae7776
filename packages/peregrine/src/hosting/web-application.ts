import { ErrorCodes, PeregrineError } from "../errors.js";
import { IServerAddressesFeature } from "../features/index.js";
import { createConsoleLogger, type Logger } from "../logging.js";
import { NativeServer } from "../native/native-server.js";
import type { ServerLimits } from "../server/limits.js";
import type { IServer } from "../server/server.js";
import { ApplicationBuilder } from "./application-builder.js";
import { HostingApplication } from "./hosting-application.js";

/** Options of WebApplication.create(). docs/options.md documents each with its default. */
export interface WebApplicationOptions {
  /**
   * Addresses to listen on. Default: `PEREGRINE_URLS` (";"-separated) when set, else
   * `http://localhost:5000`. Port 0 picks a free port; `app.urls` tells which.
   */
  urls?: string[];
  /** The server implementation: "native" (default) or an IServer instance. */
  server?: "native" | IServer;
  /** Request and response limits (docs/limits.md). */
  limits?: Partial<ServerLimits>;
  /** Milliseconds in-flight requests get to finish on stop(). Default 30000. */
  shutdownTimeout?: number;
  /** Adds `Server: Peregrine` to responses. Default true. */
  addServerHeader?: boolean;
  /** Where logs go. Default: the console, at PEREGRINE_LOG_LEVEL or "info". */
  logger?: Logger;
}

const KNOWN_OPTIONS = new Set(["urls", "server", "limits", "shutdownTimeout", "addServerHeader", "logger"]);

function invalidOption(message: string): PeregrineError {
  return new PeregrineError(ErrorCodes.INVALID_OPTION, message);
}

function validate(options: WebApplicationOptions): void {
  if (options === null || typeof options !== "object") throw invalidOption("WebApplication.create() takes an options object");
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw invalidOption(`unknown option "${key}"`);
  }
  if (options.urls !== undefined) {
    if (!Array.isArray(options.urls) || options.urls.some((u) => typeof u !== "string")) {
      throw invalidOption(`urls must be an array of strings, not ${JSON.stringify(options.urls)}`);
    }
  }
  const timeout = options.shutdownTimeout;
  if (timeout !== undefined && (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout < 0)) {
    throw invalidOption(`shutdownTimeout = ${String(timeout)} is invalid: expected milliseconds >= 0`);
  }
  const server = options.server;
  if (server !== undefined && server !== "native" && (typeof server !== "object" || typeof server.start !== "function")) {
    throw invalidOption(`server = ${JSON.stringify(server)} is invalid: expected "native" or an IServer`);
  }
}

/** `PEREGRINE_URLS` wins over the default; URLs given in code win over both. */
function resolveUrls(urls: string[] | undefined): string[] {
  if (urls !== undefined && urls.length > 0) return [...urls];
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
  readonly #urls: string[];
  #state: "created" | "starting" | "started" | "stopping" | "stopped" = "created";
  #stopping: Promise<void> | undefined;

  private constructor(options: WebApplicationOptions) {
    super();
    this.logger = options.logger ?? createConsoleLogger();
    this.#urls = resolveUrls(options.urls);
    const server = options.server;
    this.server =
      server === undefined || server === "native"
        ? new NativeServer({
            ...(options.limits !== undefined ? { limits: options.limits } : {}),
            ...(options.shutdownTimeout !== undefined ? { shutdownTimeout: options.shutdownTimeout } : {}),
            ...(options.addServerHeader !== undefined ? { addServerHeader: options.addServerHeader } : {}),
            logger: this.logger,
          })
        : server;
  }

  static create(options: WebApplicationOptions = {}): WebApplication {
    validate(options);
    return new WebApplication(options);
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
    for (const url of this.urls) this.logger.info({}, `Now listening on: ${url}`);
  }

  /** Stops gracefully: in-flight requests get shutdownTimeout to finish. */
  stop(signal?: AbortSignal): Promise<void> {
    if (this.#state === "created" || this.#state === "stopped") {
      this.#state = "stopped";
      return Promise.resolve();
    }
    this.#stopping ??= (async () => {
      this.#state = "stopping";
      this.logger.info({}, "Application is shutting down...");
      await this.server.stop(signal);
      this.#state = "stopped";
    })();
    return this.#stopping;
  }

  /** Starts, waits for SIGINT or SIGTERM, then stops gracefully. */
  async run(): Promise<void> {
    await this.start();
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
