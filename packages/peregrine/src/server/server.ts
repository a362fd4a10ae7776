import type { IFeatureCollection } from "../features/index.js";

/**
 * What a server hands each request to (ASP.NET Core's IHttpApplication). The host
 * implements it; servers call it.
 */
export interface IHttpApplication<TContext> {
  /** Builds the per-request context over the server's features. */
  createContext(features: IFeatureCollection): TContext;
  /**
   * Runs the request through the app. It never rejects: the application answers its
   * own errors (500, or an abort once the response started). It returns undefined
   * when the request completed synchronously.
   */
  processRequest(context: TContext): Promise<void> | undefined;
  /** Called once the exchange is over, with the error that ended it, if any. */
  disposeContext(context: TContext, error: unknown): void;
}

/**
 * A server implementation (ASP.NET Core's IServer). It listens on the addresses in its
 * IServerAddressesFeature, surfaces each request as a feature collection, and after
 * `processRequest` settles it completes whatever response the app left open.
 */
export interface IServer {
  /** Server-level features; at least IServerAddressesFeature. */
  readonly features: IFeatureCollection;
  start<TContext>(application: IHttpApplication<TContext>): Promise<void>;
  /**
   * Stops accepting, lets in-flight requests finish, and resolves when every connection
   * is closed. An aborted `signal` ends the grace period early.
   */
  stop(signal?: AbortSignal): Promise<void>;
}
