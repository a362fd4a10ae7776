import path from "node:path";
import { type BoundConfiguration, bindConfiguration } from "../config/binder.js";
import type { Configuration } from "../config/configuration.js";
import { loadConfiguration } from "../config/load.js";
import { ErrorCodes, PeregrineError } from "../errors.js";
import { createConsoleLogger } from "../logging.js";
import type { LimitsOptions } from "../server/limits.js";
import { HostEnvironment } from "./environment.js";
import { WebApplication, type WebApplicationOptions } from "./web-application.js";

/** `limits` merge limit by limit (and `http2` field by field); every other option replaces the configured one. */
function layerOptions(configured: WebApplicationOptions, code: WebApplicationOptions): WebApplicationOptions {
  const merged: WebApplicationOptions = { ...configured, ...code };
  if (configured.limits !== undefined && code.limits !== undefined) {
    const limits: LimitsOptions = { ...configured.limits, ...code.limits };
    if (configured.limits.http2 !== undefined && code.limits.http2 !== undefined) {
      limits.http2 = { ...configured.limits.http2, ...code.limits.http2 };
    }
    merged.limits = limits;
  }
  return merged;
}

/**
 * Reads the configuration sources, then builds the app (ASP.NET Core's
 * WebApplicationBuilder). From `WebApplication.createBuilder(args, options)`:
 *
 *     const builder = WebApplication.createBuilder(process.argv.slice(2));
 *     if (builder.environment.isDevelopment()) builder.options.addServerHeader = false;
 *     const app = builder.build();
 *
 * A configuration value that is invalid fails here, with PEREGRINE_INVALID_CONFIG.
 */
export class WebApplicationBuilder {
  /** Every source's keys, read-only: `configuration.get("server:limits:maxRequestBodySize")`. */
  readonly configuration: Configuration;
  readonly environment: HostEnvironment;
  /** Options in code: laid over the configuration by build(), so they win over every source. */
  readonly options: WebApplicationOptions;
  readonly #bound: BoundConfiguration;

  constructor(args: readonly string[], options: WebApplicationOptions) {
    if (!Array.isArray(args) || args.some((a) => typeof a !== "string")) {
      throw new PeregrineError(
        ErrorCodes.INVALID_OPTION,
        "createBuilder(args) takes the command-line arguments as strings",
      );
    }
    if (options === null || typeof options !== "object") {
      throw new PeregrineError(ErrorCodes.INVALID_OPTION, "createBuilder(args, options) takes an options object");
    }
    const contentRoot = path.resolve(options.contentRoot ?? process.cwd());
    const loaded = loadConfiguration({
      contentRoot,
      args,
      env: process.env,
      ...(options.environment !== undefined ? { environment: options.environment } : {}),
    });
    this.configuration = loaded.configuration;
    this.environment = new HostEnvironment(loaded.environment, contentRoot);
    this.#bound = bindConfiguration(loaded.configuration, contentRoot);
    this.options = { ...options };
  }

  /** Creates the app from the configuration and `options`; unknown keys are logged as warnings. */
  build(): WebApplication {
    const logger = this.options.logger ?? createConsoleLogger(this.#bound.logLevel);
    for (const warning of this.#bound.warnings) logger.warn({}, warning);
    return WebApplication.create({
      ...layerOptions(this.#bound.options, this.options),
      environment: this.environment.name,
      contentRoot: this.environment.contentRootPath,
      logger,
    });
  }
}
