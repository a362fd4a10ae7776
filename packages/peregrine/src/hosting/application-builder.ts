import { ErrorCodes, PeregrineError } from "../errors.js";
import { isPromiseLike } from "../http/body.js";
import type { HttpContext } from "../http/context.js";
import { DONE } from "../http/done.js";
import { type ForwardedHeadersOptions, forwardedHeaders } from "../middleware/forwarded-headers.js";
import { type EndpointHandler, Router } from "../routing/router.js";

/** A step of the pipeline, as composed: takes the context, finishes when done. */
export type RequestDelegate = (ctx: HttpContext) => void | Promise<void>;

/**
 * Middleware: runs around the rest of the pipeline. `next()` runs the rest and
 * resolves when it is done; not calling it short-circuits the pipeline.
 */
export type Middleware = (ctx: HttpContext, next: () => Promise<void>) => void | Promise<void>;

/**
 * Builds a request pipeline from middleware and endpoints (ASP.NET Core's
 * IApplicationBuilder plus minimal-API endpoint routing). Routing runs first, so every
 * middleware sees `ctx.request.routeValues`; the matched endpoint runs last.
 */
export class ApplicationBuilder {
  readonly #components: ((next: RequestDelegate) => RequestDelegate)[] = [];
  readonly #router = new Router();
  #frozen = false;

  /** Adds middleware. Middleware runs in the order it was added. */
  use(middleware: Middleware): this {
    this.#checkOpen();
    this.#components.push((next) => (ctx) => middleware(ctx, () => invoke(next, ctx)));
    return this;
  }

  mapGet(template: string, handler: EndpointHandler): this {
    return this.#add(["GET"], template, handler);
  }
  mapPost(template: string, handler: EndpointHandler): this {
    return this.#add(["POST"], template, handler);
  }
  mapPut(template: string, handler: EndpointHandler): this {
    return this.#add(["PUT"], template, handler);
  }
  mapDelete(template: string, handler: EndpointHandler): this {
    return this.#add(["DELETE"], template, handler);
  }
  mapPatch(template: string, handler: EndpointHandler): this {
    return this.#add(["PATCH"], template, handler);
  }

  /**
   * Applies the X-Forwarded-For / -Proto / -Host and `Forwarded` headers of trusted
   * proxies to `ctx.connection.remoteAddress`, `ctx.request.scheme` and
   * `ctx.request.host`. Add it before other middleware; docs/forwarded-headers.md.
   */
  useForwardedHeaders(options?: ForwardedHeadersOptions): this {
    return this.use(forwardedHeaders(options));
  }

  /**
   * `map(methods, template, handler)` maps an endpoint for several methods (an empty
   * list or "*" means any method). `map(pathPrefix, branch => ...)` runs a sub-pipeline
   * for paths under the prefix: inside it, `pathBase` holds the prefix and `path` the
   * rest.
   */
  map(methods: readonly string[] | "*", template: string, handler: EndpointHandler): this;
  map(pathPrefix: string, configure: (branch: ApplicationBuilder) => void): this;
  map(
    first: readonly string[] | string,
    second: string | ((branch: ApplicationBuilder) => void),
    third?: EndpointHandler,
  ): this {
    if (typeof second === "string") {
      if (third === undefined) throw new TypeError("map(methods, template, handler) needs a handler");
      const methods = first === "*" || (Array.isArray(first) && first.length === 0) ? null : (first as string[]);
      return this.#add(methods, second, third);
    }
    return this.#branch(first as string, second);
  }

  #add(methods: readonly string[] | null, template: string, handler: EndpointHandler): this {
    this.#checkOpen();
    if (typeof handler !== "function") throw new TypeError(`the handler for "${template}" must be a function`);
    this.#router.add(methods, template, handler);
    return this;
  }

  #branch(prefix: string, configure: (branch: ApplicationBuilder) => void): this {
    this.#checkOpen();
    const normalized = `/${prefix.replace(/^\/+|\/+$/g, "")}`;
    if (normalized === "/") throw new PeregrineError(ErrorCodes.INVALID_ROUTE, "map() needs a non-empty path prefix");
    const branch = new ApplicationBuilder();
    configure(branch);
    const lower = normalized.toLowerCase();
    this.#components.push((next) => {
      const branchPipeline = branch.build();
      return (ctx) => {
        const request = ctx.request;
        const path = request.path;
        const head = path.slice(0, lower.length).toLowerCase();
        const boundary = path.length === lower.length || path.charCodeAt(lower.length) === 47;
        if (head !== lower || !boundary) return next(ctx);
        const pathBase = request.pathBase;
        request.pathBase = pathBase + path.slice(0, lower.length);
        request.path = path.length === lower.length ? "/" : path.slice(lower.length);
        const restore = () => {
          request.pathBase = pathBase;
          request.path = path;
        };
        let result: void | Promise<void>;
        try {
          result = branch.#route(ctx, branchPipeline);
        } catch (error) {
          restore();
          throw error;
        }
        if (isPromiseLike(result)) return result.finally(restore);
        restore();
      };
    });
    return this;
  }

  #checkOpen(): void {
    if (this.#frozen) {
      throw new PeregrineError(ErrorCodes.ALREADY_STARTED, "middleware and endpoints cannot be added after start()");
    }
  }

  /** Routes, then runs the pipeline. */
  #route(ctx: HttpContext, pipeline: RequestDelegate): void | Promise<void> {
    const match = this.#router.match(ctx.request.method, ctx.request.path);
    if (match.kind === "endpoint") {
      if (match.values !== undefined) ctx.request.routeValues = match.values;
      ctx.endpoint = match.endpoint;
      ctx.allowedMethods = undefined;
    } else {
      ctx.endpoint = undefined;
      ctx.allowedMethods = match.kind === "methodNotAllowed" ? match.allow : undefined;
    }
    return pipeline(ctx);
  }

  /** Composes the pipeline. Adding to the builder afterwards is an error. */
  build(): RequestDelegate {
    this.#frozen = true;
    let pipeline: RequestDelegate = runEndpoint;
    for (let i = this.#components.length - 1; i >= 0; i--) {
      pipeline = (this.#components[i] as (next: RequestDelegate) => RequestDelegate)(pipeline);
    }
    const composed = pipeline;
    return (ctx) => this.#route(ctx, composed);
  }
}

function invoke(delegate: RequestDelegate, ctx: HttpContext): Promise<void> {
  try {
    const result = delegate(ctx);
    return isPromiseLike(result) ? (result as Promise<void>) : DONE;
  } catch (error) {
    return Promise.reject(error);
  }
}

/** The end of the pipeline: the matched endpoint, or 404 / 405. */
function runEndpoint(ctx: HttpContext): void | Promise<void> {
  const endpoint = ctx.endpoint;
  if (endpoint === undefined) {
    const allow = ctx.allowedMethods;
    if (!ctx.response.hasStarted) {
      if (allow !== undefined) {
        ctx.response.statusCode = 405;
        ctx.response.headers.set("allow", allow.join(", "));
      } else {
        ctx.response.statusCode = 404;
      }
    }
    return;
  }
  const result = endpoint.handler(ctx);
  if (isPromiseLike(result)) {
    return Promise.resolve(result).then((value) => {
      ctx.endpointResult = value;
    });
  }
  ctx.endpointResult = result;
}
