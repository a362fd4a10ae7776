import { BadHttpRequestError, PeregrineError } from "../errors.js";
import { type IFeatureCollection, IHttpRequestLifetimeFeature } from "../features/index.js";
import { isPromiseLike } from "../http/body.js";
import { HttpContext } from "../http/context.js";
import type { Logger } from "../logging.js";
import type { IHttpApplication } from "../server/server.js";
import type { RequestDelegate } from "./application-builder.js";
import { writeResult } from "./results.js";

/**
 * Runs each request through the pipeline, writes the endpoint's result once the
 * pipeline has unwound, and answers errors: 500 (or a BadHttpRequestError's status)
 * when the response has not started, an abort when it has. It never lets an error
 * reach the server, so a throwing handler cannot crash the process.
 */
export class HostingApplication implements IHttpApplication<HttpContext> {
  readonly #pipeline: RequestDelegate;
  readonly #logger: Logger;

  constructor(pipeline: RequestDelegate, logger: Logger) {
    this.#pipeline = pipeline;
    this.#logger = logger;
  }

  createContext(features: IFeatureCollection): HttpContext {
    return new HttpContext(features);
  }

  processRequest(ctx: HttpContext): Promise<void> | undefined {
    let pending: void | Promise<void>;
    try {
      pending = this.#pipeline(ctx);
    } catch (error) {
      return this.#fail(ctx, error);
    }
    if (isPromiseLike(pending)) {
      return pending.then(
        () => this.#complete(ctx),
        (error: unknown) => this.#fail(ctx, error),
      );
    }
    return this.#complete(ctx);
  }

  disposeContext(_ctx: HttpContext, _error: unknown): void {}

  #complete(ctx: HttpContext): Promise<void> | undefined {
    let written: void | Promise<void>;
    try {
      written = writeResult(ctx, ctx.endpointResult);
    } catch (error) {
      return this.#fail(ctx, error);
    }
    if (isPromiseLike(written)) {
      return written.then(undefined, (error: unknown) => this.#fail(ctx, error));
    }
    return undefined;
  }

  #fail(ctx: HttpContext, error: unknown): Promise<void> | undefined {
    const response = ctx.response;
    const status = error instanceof BadHttpRequestError ? error.statusCode : 500;
    const fields = {
      err: error,
      traceIdentifier: ctx.traceIdentifier,
      method: ctx.request.method,
      path: ctx.request.pathBase + ctx.request.path,
      ...(error instanceof PeregrineError ? { code: error.code } : {}),
    };
    if (status >= 500) this.#logger.error(fields, "Unhandled exception while processing the request");
    else this.#logger.info(fields, "Bad request");
    if (response.hasStarted) {
      // The client has a partial response; only cutting it off tells it so.
      ctx.features.get(IHttpRequestLifetimeFeature)?.abort();
      return undefined;
    }
    try {
      response.headers.clear();
      response.statusCode = status;
      response.reasonPhrase = undefined;
      return response.end().then(undefined, () => ctx.features.get(IHttpRequestLifetimeFeature)?.abort());
    } catch {
      ctx.features.get(IHttpRequestLifetimeFeature)?.abort();
      return undefined;
    }
  }
}
