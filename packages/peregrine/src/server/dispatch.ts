import type { IFeatureCollection } from "../features/index.js";
import type { Logger } from "../logging.js";
import type { IHttpApplication } from "./server.js";

/** What a server's per-request object offers once the app is done with it. */
export interface DispatchedExchange extends IFeatureCollection {
  readonly isCompleted: boolean;
  readonly hasStarted: boolean;
  readonly traceIdentifier: string;
  /** Ends the response the app left open (sends the status alone if nothing was written). */
  complete(): Promise<void>;
  /** Drops the exchange: connection closed (HTTP/1.1) or stream reset (HTTP/2). */
  abort(): void;
}

/**
 * Runs one request through the application, the part every server shares: create the
 * context, process the request, then complete whatever response the app left open and
 * dispose the context. A failure that reaches here after the response started aborts
 * it; nothing is thrown back at the server.
 */
export function dispatch(application: IHttpApplication<unknown>, exchange: DispatchedExchange, logger: Logger): void {
  let context: unknown;
  let pending: Promise<void> | undefined;
  try {
    context = application.createContext(exchange);
    pending = application.processRequest(context);
  } catch (error) {
    finish(application, exchange, context, error, logger);
    return;
  }
  if (pending === undefined) finish(application, exchange, context, undefined, logger);
  else
    pending.then(
      () => finish(application, exchange, context, undefined, logger),
      (error: unknown) => finish(application, exchange, context, error, logger),
    );
}

function finish(
  application: IHttpApplication<unknown>,
  exchange: DispatchedExchange,
  context: unknown,
  error: unknown,
  logger: Logger,
): void {
  if (error !== undefined) {
    logger.error({ err: error, traceIdentifier: exchange.traceIdentifier }, "The application failed a request");
  }
  if (!exchange.isCompleted) {
    if (error !== undefined && exchange.hasStarted) exchange.abort();
    else {
      try {
        exchange.complete().then(undefined, () => exchange.abort());
      } catch {
        exchange.abort();
      }
    }
  }
  if (context !== undefined) {
    try {
      application.disposeContext(context, error);
    } catch (disposeError) {
      logger.error({ err: disposeError }, "disposeContext failed");
    }
  }
}
