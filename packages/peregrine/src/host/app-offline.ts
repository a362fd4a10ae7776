import fs from "node:fs";
import path from "node:path";
import type { Logger } from "../logging.js";

/** The file that takes the app offline when it appears in the app's folder (as with the ASP.NET Core Module). */
export const APP_OFFLINE_FILE = "app_offline.html";

/** How often the folder is checked besides fs.watch, which can miss events (network filesystems, editors that rename). */
const POLL_MS = 1000;

/**
 * Watches the app's folder for app_offline.html. `page` holds the file's content while
 * it exists; `onChange` runs when it appears (with the content) and when it goes.
 */
export class AppOfflineWatch {
  readonly #file: string;
  readonly #onChange: (page: string | undefined) => void;
  readonly #logger: Logger;
  #page: string | undefined;
  #watcher: fs.FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;
  #checkAgain = false;

  private constructor(folder: string, onChange: (page: string | undefined) => void, logger: Logger) {
    this.#file = path.join(folder, APP_OFFLINE_FILE);
    this.#onChange = onChange;
    this.#logger = logger;
  }

  /** Reads the current state, then watches; `onChange` runs only for later changes. */
  static async start(
    folder: string,
    onChange: (page: string | undefined) => void,
    logger: Logger,
  ): Promise<AppOfflineWatch> {
    const watch = new AppOfflineWatch(folder, onChange, logger);
    watch.#page = await watch.#read();
    try {
      watch.#watcher = fs.watch(folder, { persistent: false }, (_event, name) => {
        if (name === null || name === APP_OFFLINE_FILE) watch.check();
      });
      watch.#watcher.on("error", () => watch.#stopWatcher());
    } catch (error) {
      logger.debug({ err: error }, `Cannot watch ${folder}; checking for ${APP_OFFLINE_FILE} every ${POLL_MS} ms`);
    }
    watch.#timer = setInterval(() => watch.check(), POLL_MS);
    watch.#timer.unref();
    return watch;
  }

  /** The content of app_offline.html while it exists. */
  get page(): string | undefined {
    return this.#page;
  }

  /** Looks at the file now; checks never overlap, and one asked for during a check runs after it. */
  check(): Promise<void> {
    if (this.#checking !== undefined) {
      this.#checkAgain = true;
      return this.#checking;
    }
    this.#checking = (async () => {
      do {
        this.#checkAgain = false;
        const page = await this.#read();
        const appeared = page !== undefined && this.#page === undefined;
        const went = page === undefined && this.#page !== undefined;
        this.#page = page;
        if (appeared || went) this.#onChange(page);
      } while (this.#checkAgain);
    })().finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  close(): void {
    this.#stopWatcher();
    clearInterval(this.#timer);
  }

  #stopWatcher(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  async #read(): Promise<string | undefined> {
    try {
      return await fs.promises.readFile(this.#file, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENOTDIR") {
        this.#logger.warn({ err: error }, `Cannot read ${this.#file}; treating the app as online`);
      }
      return undefined;
    }
  }
}
