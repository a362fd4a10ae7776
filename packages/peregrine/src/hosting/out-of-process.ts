import { createHash, timingSafeEqual } from "node:crypto";
import { ErrorCodes, InvalidOptionError } from "../errors.js";
import type { HttpContext } from "../http/context.js";
import type { Logger } from "../logging.js";
import type { ApplicationBuilder } from "./application-builder.js";

/** The loopback port `peregrine host` gives the app. */
export const PORT_VARIABLE = "PEREGRINE_PORT";
/** The per-start secret `peregrine host` gives the app; every forwarded request carries it. */
export const TOKEN_VARIABLE = "PEREGRINE_TOKEN";
/** The request header the host puts the token in. */
export const TOKEN_HEADER = "x-peregrine-token";

/** Where the host's forwarded requests come from. */
const LOOPBACK_NETWORKS = ["127.0.0.0/8", "::1/128"];

/** What an app behind `peregrine host` learns from its environment. */
export interface OutOfProcessSettings {
  readonly port: number;
  readonly token: string;
}

/**
 * The settings when the app runs behind `peregrine host` (both variables set), else
 * undefined. A set but malformed port fails: binding elsewhere would hide the app from
 * the host.
 */
export function readOutOfProcessSettings(env: NodeJS.ProcessEnv = process.env): OutOfProcessSettings | undefined {
  const port = env[PORT_VARIABLE];
  const token = env[TOKEN_VARIABLE];
  if (port === undefined || port === "" || token === undefined || token === "") return undefined;
  const value = Number(port);
  if (!/^\d+$/.test(port) || value < 1 || value > 65535) {
    throw new InvalidOptionError(PORT_VARIABLE, port, "expected a port from 1 to 65535, as `peregrine host` sets it");
  }
  return { port: value, token };
}

/** The one URL an app behind the host listens on. */
export function outOfProcessUrl(settings: OutOfProcessSettings): string {
  return `http://127.0.0.1:${settings.port}`;
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/**
 * Runs first in the pipeline of an app behind the host: a request without the host's
 * token is answered with 400 and logged (something else on this machine reached the
 * app's port), the token header is removed before the app sees the request, and the
 * host's X-Forwarded-* headers are applied.
 */
export function useOutOfProcessHosting(app: ApplicationBuilder, settings: OutOfProcessSettings, logger: Logger): void {
  // Comparing digests keeps the comparison constant-time whatever the header's length.
  const expected = digest(settings.token);
  app.use((ctx, next) => {
    const headers = ctx.request.headers;
    const token = headers.get(TOKEN_HEADER);
    if (token === undefined || !timingSafeEqual(digest(token), expected)) {
      reject(ctx, logger, token === undefined ? "missing" : "wrong");
      return;
    }
    headers.delete(TOKEN_HEADER);
    return next();
  });
  // Only the host (on loopback) reaches the app, so the client, scheme and host it
  // forwards are applied, one hop deep.
  app.useForwardedHeaders({ forwardedHeaders: ["for", "proto", "host"], knownNetworks: LOOPBACK_NETWORKS });
}

function reject(ctx: HttpContext, logger: Logger, token: "missing" | "wrong"): void {
  const connection = ctx.connection;
  logger.warn(
    {
      reason: ErrorCodes.HOST_TOKEN_INVALID,
      token,
      status: 400,
      connectionId: connection.id,
      remoteAddress: connection.remoteAddress,
      remotePort: connection.remotePort,
    },
    "Request rejected",
  );
  ctx.response.statusCode = 400;
}
