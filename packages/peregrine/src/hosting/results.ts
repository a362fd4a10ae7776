import { type BodyChunk, IHttpResponseBodyFeature } from "../features/index.js";
import { isAsyncIterable, isPromiseLike } from "../http/body.js";
import type { HttpContext } from "../http/context.js";
import { DONE } from "../http/done.js";

/** A result that writes itself, for handlers that want full control (ASP.NET's IResult). */
export interface HttpResult {
  executeAsync(ctx: HttpContext): void | Promise<void>;
}

function isHttpResult(value: unknown): value is HttpResult {
  return typeof (value as HttpResult | null)?.executeAsync === "function";
}

function setDefaultContentType(ctx: HttpContext, type: string): void {
  const headers = ctx.response.headers;
  if (!ctx.response.hasStarted && !headers.has("content-type")) headers.set("content-type", type);
}

async function stream(ctx: HttpContext, source: AsyncIterable<unknown>): Promise<void> {
  setDefaultContentType(ctx, "application/octet-stream");
  const response = ctx.response;
  const relayed = ctx.features.get(IHttpResponseBodyFeature)?.relay?.(source);
  if (relayed !== undefined) await relayed;
  else
    for await (const chunk of source) {
      if (typeof chunk === "string" || chunk instanceof Uint8Array) await response.write(chunk);
      else throw new TypeError("a streamed result may only yield strings and Uint8Arrays");
    }
  await response.end();
}

/**
 * Writes what an endpoint returned:
 * - string: text/plain; charset=utf-8
 * - Uint8Array / Buffer: application/octet-stream
 * - AsyncIterable of strings or Uint8Arrays: streamed, application/octet-stream
 * - an HttpResult: its executeAsync(ctx)
 * - undefined or null: nothing (the handler wrote the response itself, or it is empty)
 * - anything else (objects, arrays, numbers, booleans): JSON, application/json
 * A content-type set by the handler or middleware wins over these defaults. A response
 * the handler left open is ended; when nothing is written, the status alone is sent.
 */
export function writeResult(ctx: HttpContext, value: unknown): void | Promise<void> {
  if (value === undefined || value === null) return;
  let body: BodyChunk;
  if (typeof value === "string") {
    setDefaultContentType(ctx, "text/plain; charset=utf-8");
    body = value;
  } else if (value instanceof Uint8Array) {
    setDefaultContentType(ctx, "application/octet-stream");
    body = value;
  } else if (isAsyncIterable(value)) {
    return stream(ctx, value);
  } else if (isHttpResult(value)) {
    const result = value.executeAsync(ctx);
    return isPromiseLike(result) ? result : undefined;
  } else {
    setDefaultContentType(ctx, "application/json");
    body = JSON.stringify(value);
  }
  const ended = ctx.response.end(body);
  // Most responses are sent at once: no promise to chain, and no microtask to wait for.
  return ended === DONE ? undefined : ended;
}
