import { PeregrineError } from "../errors.js";
import type { HttpContext } from "../http/context.js";
import { REASON_PHRASES } from "../http/status.js";

/**
 * Why the host answers a request itself instead of the app: the app cannot start, is
 * failing too often, is offline, or could not be reached. `status` is what the client
 * gets (502 or 503); `retryAfter`, in seconds, becomes a Retry-After header.
 */
export class AppUnavailableError extends PeregrineError {
  readonly status: 502 | 503;
  readonly retryAfter: number | undefined;

  constructor(code: string, status: 502 | 503, message: string, options?: ErrorOptions & { retryAfter?: number }) {
    super(code, message, options);
    this.name = "AppUnavailableError";
    this.status = status;
    this.retryAfter = options?.retryAfter;
  }
}

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] as string);
}

/** The page a client gets for an AppUnavailableError: the status, what happened, and the code to search for. */
export function unavailablePage(error: AppUnavailableError): string {
  const title = `${error.status} ${REASON_PHRASES[error.status] ?? ""}`.trim();
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${title}</title></head>
<body>
<h1>HTTP Error ${escapeHtml(title)}</h1>
<p>${escapeHtml(error.message)}</p>
<p>Error code: <code>${escapeHtml(error.code)}</code>. The host's log has the details.</p>
</body>
</html>
`;
}

/** Answers with the error's status and page; does nothing when the response has started. */
export async function sendUnavailable(ctx: HttpContext, error: AppUnavailableError, body?: string): Promise<void> {
  const response = ctx.response;
  if (response.hasStarted) {
    ctx.abort();
    return;
  }
  response.statusCode = error.status;
  response.headers.clear();
  response.contentType = "text/html; charset=utf-8";
  response.headers.set("cache-control", "no-store");
  if (error.retryAfter !== undefined) response.headers.set("retry-after", String(error.retryAfter));
  await response.end(body ?? unavailablePage(error));
}
