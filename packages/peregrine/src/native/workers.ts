import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { ErrorCodes, PeregrineError } from "../errors.js";
import type { Logger } from "../logging.js";

/** Where a worker thread's app attaches: the listener's pool and this worker's place in it. */
export interface WorkerAssignment {
  token: number;
  index: number;
  count: number;
}

/** The workerData key that marks a thread as a Peregrine worker. */
const ASSIGNMENT_KEY = "peregrine:worker";
/** The message a worker posts once its server is attached and taking requests. */
const READY = "peregrine:ready";
/** How often a worker may crash within a minute before it is left down. */
const RESTARTS_PER_MINUTE = 5;

/** This thread's assignment, when the `workers` option started it; else undefined. */
export function currentWorkerAssignment(): WorkerAssignment | undefined {
  if (isMainThread || workerData === null || typeof workerData !== "object") return undefined;
  const assignment = (workerData as Record<string, unknown>)[ASSIGNMENT_KEY];
  return assignment === undefined ? undefined : (assignment as WorkerAssignment);
}

/** Tells the thread that started this worker that it takes requests now. */
export function reportWorkerReady(): void {
  parentPort?.postMessage(READY);
}

/**
 * The worker threads of one listener. Each loads the app's entry module again, as
 * the main thread did; its WebApplication sees the assignment and attaches to the
 * listener's pool instead of listening itself. A worker that crashes is started
 * again, up to RESTARTS_PER_MINUTE times a minute; the core meanwhile sends its share
 * of requests to the others.
 */
export class WorkerGroup {
  readonly #entry: string;
  readonly #token: number;
  readonly #count: number;
  readonly #logger: Logger;
  readonly #workers: (Worker | undefined)[];
  readonly #crashes: number[] = [];
  #stopping = false;

  constructor(entry: string, token: number, count: number, logger: Logger) {
    this.#entry = entry;
    this.#token = token;
    this.#count = count;
    this.#logger = logger;
    this.#workers = new Array<Worker | undefined>(count).fill(undefined);
  }

  /** Starts every worker; resolves once all of them take requests. */
  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.#count }, (_, index) => this.#spawn(index)));
  }

  #spawn(index: number): Promise<void> {
    const assignment: WorkerAssignment = { token: this.#token, index, count: this.#count };
    const worker = new Worker(this.#entry, {
      argv: process.argv.slice(2),
      execArgv: process.execArgv,
      workerData: { [ASSIGNMENT_KEY]: assignment },
    });
    this.#workers[index] = worker;
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      worker.on("message", (message: unknown) => {
        if (message !== READY || ready) return;
        ready = true;
        resolve();
      });
      worker.on("error", (error) => {
        if (!ready) reject(workerFailed(index, error));
        else this.#logger.error({ err: error, worker: index }, "A worker thread failed");
      });
      worker.on("exit", (code) => {
        this.#workers[index] = undefined;
        if (!ready) {
          reject(workerFailed(index, new Error(`it exited with code ${code} before it took requests`)));
          return;
        }
        if (!this.#stopping) this.#restart(index, code);
      });
    });
  }

  #restart(index: number, code: number): void {
    const now = Date.now();
    while (this.#crashes.length > 0 && now - (this.#crashes[0] as number) > 60_000) this.#crashes.shift();
    this.#crashes.push(now);
    if (this.#crashes.length > RESTARTS_PER_MINUTE) {
      this.#logger.error(
        { worker: index, code, reason: "WORKER_RESTART_LIMIT" },
        `Worker ${index} exited (code ${code}); more than ${RESTARTS_PER_MINUTE} worker crashes this minute, so it stays down`,
      );
      return;
    }
    this.#logger.warn(
      { worker: index, code, reason: "WORKER_EXITED" },
      `Worker ${index} exited (code ${code}); restarting it`,
    );
    this.#spawn(index).catch((error: unknown) => {
      // Stopping while the worker was starting makes it fail to attach: not an error.
      if (!this.#stopping) this.#logger.error({ err: error, worker: index }, `Worker ${index} could not be restarted`);
    });
  }

  /**
   * Waits for the workers to exit once the server has stopped (their servers end with
   * it); those still running after `timeout` ms are terminated.
   */
  async stop(timeout: number): Promise<void> {
    this.#stopping = true;
    const running = this.#workers.filter((w): w is Worker => w !== undefined);
    await Promise.all(
      running.map(
        (worker) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => void worker.terminate().then(() => resolve()), timeout);
            worker.once("exit", () => {
              clearTimeout(timer);
              resolve();
            });
          }),
      ),
    );
  }
}

function workerFailed(index: number, cause: unknown): PeregrineError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new PeregrineError(ErrorCodes.WORKER_FAILED, `worker ${index} failed to start: ${detail}`, { cause });
}

/** The most worker threads one listener takes. */
export const MAX_WORKERS = 64;

/** Checks the `workers` option: a whole number from 1 to MAX_WORKERS. */
export function validateWorkers(value: unknown): void {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_WORKERS) {
    throw new PeregrineError(
      ErrorCodes.INVALID_OPTION,
      `workers = ${String(value)} is invalid: expected a whole number from 1 to ${MAX_WORKERS}`,
    );
  }
}

/**
 * What the native server needs for `workers`: in the main thread, how many workers
 * to start and the module they run (the one node started: process.argv[1]); in a
 * worker, where to attach.
 */
export function workerServerOptions(
  workers: number | undefined,
): { workers: { count: number; entry: string } } | { attach: WorkerAssignment } | undefined {
  const assignment = currentWorkerAssignment();
  if (assignment !== undefined) return { attach: assignment };
  if (workers === undefined) return undefined;
  const entry = process.argv[1];
  if (entry === undefined || entry === "") {
    throw new PeregrineError(
      ErrorCodes.INVALID_OPTION,
      "workers needs the app to run from a module file (node app.js), which each worker loads again; this process has none",
    );
  }
  return { workers: { count: workers, entry } };
}
