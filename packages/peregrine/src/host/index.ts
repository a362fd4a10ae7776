import { ErrorCodes } from "../errors.js";
import { WebApplication } from "../hosting/web-application.js";
import type { HttpContext } from "../http/context.js";
import { APP_OFFLINE_FILE, AppOfflineWatch } from "./app-offline.js";
import { AppProcess } from "./app-process.js";
import { type HostOptions, resolveHostOptions } from "./options.js";
import { Forwarder } from "./proxy.js";
import { AppUnavailableError, sendUnavailable } from "./unavailable.js";

export type { HostOptions } from "./options.js";

/** A host that listens on its public URLs; see startHost(). */
export interface RunningHost {
  /** The public addresses the host listens on, port 0 resolved. */
  readonly urls: string[];
  /** The process id of the app, while one runs. */
  readonly appProcessId: number | undefined;
  /** Stops accepting, lets in-flight requests finish, then stops the app gracefully. */
  stop(): Promise<void>;
}

const OFFLINE = new AppUnavailableError(
  ErrorCodes.HOST_APP_OFFLINE,
  503,
  `The application is offline for maintenance (${APP_OFFLINE_FILE}).`,
);

/**
 * Starts the out-of-process host (`peregrine host`): a Peregrine server on the public
 * URLs that runs the app as a child process on a loopback port and forwards every
 * request to it. The app starts on the first request, or at once with `eager`.
 * docs/hosting.md describes the whole model.
 */
export async function startHost(options: HostOptions): Promise<RunningHost> {
  const resolved = resolveHostOptions(options);
  const { logger } = resolved;
  const app = new AppProcess({
    entry: resolved.entry,
    cwd: resolved.folder,
    env: resolved.env,
    startupTimeLimit: resolved.startupTimeLimit,
    rapidFailsPerMinute: resolved.rapidFailsPerMinute,
    shutdownTimeout: resolved.shutdownTimeout,
    logger,
  });
  const offline = await AppOfflineWatch.start(
    resolved.folder,
    (page) => {
      if (page !== undefined) {
        logger.warn({ code: ErrorCodes.HOST_APP_OFFLINE }, `${APP_OFFLINE_FILE} appeared: stopping the application`);
        void app.stop();
      } else {
        logger.info({}, `${APP_OFFLINE_FILE} was removed: the application is served again`);
        if (resolved.eager) app.startEagerly();
      }
    },
    logger,
  );
  const forwarder = new Forwarder(logger);
  const web = WebApplication.create({
    urls: resolved.urls,
    ...(resolved.tls !== undefined ? { tls: resolved.tls } : {}),
    shutdownTimeout: resolved.shutdownTimeout,
    // The app's own limit applies; the host streams whatever the app accepts.
    limits: { maxRequestBodySize: null },
    // The app's response carries its own Server header, if any.
    addServerHeader: false,
    logger,
  });
  web.use(async (ctx: HttpContext) => {
    const page = offline.page;
    if (page !== undefined) return sendUnavailable(ctx, OFFLINE, page);
    let upstream = app.upstream;
    if (upstream === undefined) {
      try {
        upstream = await app.acquire();
      } catch (error) {
        if (!(error instanceof AppUnavailableError)) throw error;
        return sendUnavailable(ctx, error);
      }
    }
    return forwarder.forward(ctx, upstream);
  });
  try {
    await web.start();
  } catch (error) {
    offline.close();
    throw error;
  }
  if (resolved.eager && offline.page === undefined) app.startEagerly();

  let stopping: Promise<void> | undefined;
  return {
    get urls() {
      return web.urls;
    },
    get appProcessId() {
      return app.pid;
    },
    stop() {
      stopping ??= (async () => {
        await web.stop();
        offline.close();
        await app.close();
        forwarder.close();
      })();
      return stopping;
    },
  };
}
