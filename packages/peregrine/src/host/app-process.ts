import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { ErrorCodes } from "../errors.js";
import { PORT_VARIABLE, TOKEN_VARIABLE } from "../hosting/out-of-process.js";
import type { Logger } from "../logging.js";
import { forEachLine } from "./app-log.js";
import { canConnect, freeLoopbackPort } from "./loopback.js";
import { RapidFailWindow } from "./rapid-fails.js";
import { AppUnavailableError } from "./unavailable.js";

/** Where a ready app listens, and the token it expects. */
export interface Upstream {
  readonly port: number;
  readonly token: string;
  readonly pid: number;
}

export interface AppProcessOptions {
  /** The app's entry script, absolute. */
  entry: string;
  /** The app's working directory. */
  cwd: string;
  /** Variables given to the app on top of the host's own environment. */
  env: Record<string, string>;
  /** Milliseconds the app has to start listening. */
  startupTimeLimit: number;
  /** Failures a minute that are restarted; one more blocks starts until the minute passes. */
  rapidFailsPerMinute: number;
  /** Milliseconds the app gets to exit after SIGTERM before SIGKILL. */
  shutdownTimeout: number;
  logger: Logger;
}

/** Requests that may wait for the app to start; more get 503 at once. */
export const MAX_WAITING_REQUESTS = 1000;

/** Readiness polling: the first retry after this many ms, doubling up to the max. */
const FIRST_POLL_MS = 10;
const MAX_POLL_MS = 250;

/** One spawn of the app, from port allocation to exit. */
class AppInstance {
  readonly token = randomBytes(32).toString("hex");
  child: ChildProcess | undefined;
  /** Set once the app listens. */
  upstream: Upstream | undefined;
  /** Set when the host ends this instance on purpose (stop, timeout): its exit is not a crash. */
  stopping = false;
  exitCode: number | null = null;
  exitSignal: string | null = null;
  hasExited = false;
  readonly exited: Promise<void>;
  #onExit!: () => void;
  ready!: Promise<Upstream>;

  constructor() {
    this.exited = new Promise((resolve) => {
      this.#onExit = resolve;
    });
  }

  markExited(code: number | null, signal: string | null): void {
    if (this.hasExited) return;
    this.hasExited = true;
    this.exitCode = code;
    this.exitSignal = signal;
    this.#onExit();
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  describeExit(): string {
    return this.exitSignal !== null ? `signal ${this.exitSignal}` : `code ${this.exitCode}`;
  }
}

/**
 * The app's process behind the host: started on demand, watched until it listens on its
 * loopback port, restarted after a crash (within rapidFailsPerMinute), and stopped
 * gracefully (SIGTERM, then SIGKILL after shutdownTimeout).
 */
export class AppProcess {
  readonly #options: AppProcessOptions;
  readonly #fails: RapidFailWindow;
  #current: AppInstance | undefined;
  #waiting = 0;
  #closed = false;

  constructor(options: AppProcessOptions) {
    this.#options = options;
    this.#fails = new RapidFailWindow(options.rapidFailsPerMinute);
  }

  /** The process id of the app's current process, if one runs. */
  get pid(): number | undefined {
    return this.#current?.pid;
  }

  /** The app when it is ready now; undefined while it starts or when none runs. */
  get upstream(): Upstream | undefined {
    return this.#current?.upstream;
  }

  /**
   * The ready app, started if none runs. Rejects with an AppUnavailableError when the
   * app cannot start, fails too often, or too many requests already wait.
   */
  async acquire(): Promise<Upstream> {
    const instance = this.#current ?? this.#start();
    if (instance.upstream !== undefined) return instance.upstream;
    if (this.#waiting >= MAX_WAITING_REQUESTS) {
      throw new AppUnavailableError(
        ErrorCodes.HOST_QUEUE_FULL,
        503,
        `The application is starting and ${MAX_WAITING_REQUESTS} requests already wait for it. Retry shortly.`,
        { retryAfter: 1 },
      );
    }
    this.#waiting++;
    try {
      return await instance.ready;
    } finally {
      this.#waiting--;
    }
  }

  /** Starts the app now unless it runs (for --eager); failures are logged. */
  startEagerly(): void {
    if (this.#current !== undefined || this.#closed) return;
    try {
      this.#start().ready.catch(() => {});
    } catch (error) {
      this.#options.logger.error({ code: (error as AppUnavailableError).code }, (error as Error).message);
    }
  }

  /** Stops the app gracefully; the next acquire() starts it again. */
  async stop(): Promise<void> {
    const instance = this.#current;
    if (instance === undefined) return;
    this.#current = undefined;
    await this.#terminate(instance);
  }

  /** Stops the app and starts no other: the host is shutting down. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.stop();
  }

  #start(): AppInstance {
    if (this.#closed) {
      throw new AppUnavailableError(ErrorCodes.HOST_STOPPED, 503, "The host is shutting down.");
    }
    const now = Date.now();
    const until = this.#fails.blockedUntil(now);
    if (until !== undefined) {
      throw new AppUnavailableError(
        ErrorCodes.HOST_RAPID_FAILS,
        502,
        `The application failed more than ${this.#options.rapidFailsPerMinute} times in the last minute, so the host does not start it again until ${new Date(until).toISOString()}.`,
        { retryAfter: Math.max(1, Math.ceil((until - now) / 1000)) },
      );
    }
    const instance = new AppInstance();
    this.#current = instance;
    instance.ready = this.#launch(instance);
    // Failures are logged in #launch; the rejection reaches only the requests waiting.
    instance.ready.catch(() => {});
    return instance;
  }

  /** Starts the instance; any failure is logged once here and reaches the waiting requests as an AppUnavailableError. */
  async #launch(instance: AppInstance): Promise<Upstream> {
    try {
      return await this.#spawnAndWait(instance);
    } catch (error) {
      const failure =
        error instanceof AppUnavailableError
          ? error
          : new AppUnavailableError(
              ErrorCodes.HOST_APP_START_FAILED,
              502,
              `The application could not be started: ${(error as Error).message}`,
              { cause: error },
            );
      // Stopping a starting app (offline, shutdown) is asked for, not a failure.
      const level = failure.code === ErrorCodes.HOST_STOPPED ? "info" : "error";
      this.#options.logger[level]({ pid: instance.pid, code: failure.code }, failure.message);
      throw failure;
    }
  }

  async #spawnAndWait(instance: AppInstance): Promise<Upstream> {
    const { entry, cwd, env, startupTimeLimit, logger } = this.#options;
    const startedAt = Date.now();
    const port = await freeLoopbackPort();
    if (instance.stopping) throw this.#stoppedWhileStarting();
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
    // The app listens only where the host says: PEREGRINE_URLS would be ignored anyway.
    delete childEnv.PEREGRINE_URLS;
    childEnv[PORT_VARIABLE] = String(port);
    childEnv[TOKEN_VARIABLE] = instance.token;
    const child = spawn(process.execPath, [entry], { cwd, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
    instance.child = child;
    child.once("exit", (code, signal) => instance.markExited(code, signal));
    child.once("error", (error) => {
      logger.error({ err: error }, `Could not start the application process: ${error.message}`);
      instance.markExited(null, null);
    });
    const pid = child.pid ?? 0;
    forEachLine(child.stdout as NonNullable<typeof child.stdout>, (line) => logger.info({}, `[${pid}] ${line}`));
    forEachLine(child.stderr as NonNullable<typeof child.stderr>, (line) => logger.warn({}, `[${pid}] ${line}`));
    logger.info({ pid, port }, `Started application process ${pid}: node ${entry}`);
    void instance.exited.then(() => this.#onExit(instance));

    await this.#waitUntilListening(instance, port, startedAt + startupTimeLimit);
    instance.upstream = { port, token: instance.token, pid };
    logger.info({ pid, port }, `Application process ${pid} is listening on 127.0.0.1:${port}`);
    return instance.upstream;
  }

  /** Polls the port with backoff until it accepts, the app exits, or the time limit passes. */
  async #waitUntilListening(instance: AppInstance, port: number, deadline: number): Promise<void> {
    let delay = FIRST_POLL_MS;
    for (;;) {
      if (instance.hasExited) {
        if (instance.stopping) throw this.#stoppedWhileStarting();
        throw new AppUnavailableError(
          ErrorCodes.HOST_APP_START_FAILED,
          502,
          `The application failed to start: process ${instance.pid} exited with ${instance.describeExit()} before it listened.`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        this.#fails.record(Date.now());
        instance.stopping = true;
        instance.child?.kill("SIGKILL");
        throw new AppUnavailableError(
          ErrorCodes.HOST_STARTUP_TIME_LIMIT,
          502,
          `The application did not start listening within the startup time limit (${this.#options.startupTimeLimit} ms), so the host stopped it.`,
        );
      }
      if (await canConnect(port, Math.min(left, 1000))) {
        if (!instance.hasExited) return;
        continue;
      }
      await Promise.race([sleep(Math.min(delay, left)), instance.exited]);
      delay = Math.min(delay * 2, MAX_POLL_MS);
    }
  }

  #stoppedWhileStarting(): AppUnavailableError {
    return new AppUnavailableError(ErrorCodes.HOST_STOPPED, 503, "The application was stopped while it started.");
  }

  /** Bookkeeping after the app exits: a crash is counted and, if allowed, restarted. */
  #onExit(instance: AppInstance): void {
    if (this.#current === instance) this.#current = undefined;
    const { logger } = this.#options;
    const pid = instance.pid;
    if (instance.stopping) {
      logger.info({ pid }, `Application process ${pid} exited with ${instance.describeExit()}`);
      return;
    }
    this.#fails.record(Date.now());
    logger.error({ pid }, `Application process ${pid} exited unexpectedly with ${instance.describeExit()}`);
    // A crash of a running app is restarted at once; a failed start waits for the next request.
    if (instance.upstream === undefined || this.#closed || this.#current !== undefined) return;
    this.startEagerly();
  }

  async #terminate(instance: AppInstance): Promise<void> {
    instance.stopping = true;
    const child = instance.child;
    if (child === undefined || instance.hasExited) {
      await instance.ready.catch(() => {});
      return;
    }
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), this.#options.shutdownTimeout);
    await instance.exited;
    clearTimeout(timer);
  }
}
