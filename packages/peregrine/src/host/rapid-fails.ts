const MINUTE_MS = 60_000;

/**
 * Counts app failures (crashes, failed starts, startup timeouts) over a sliding minute,
 * as the ASP.NET Core Module's rapidFailsPerMinute does: up to `limit` failures a minute
 * are restarted; one more blocks starts until the minute since the oldest has passed.
 */
export class RapidFailWindow {
  readonly #limit: number;
  readonly #failures: number[] = [];

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Records a failure at `now` (ms). */
  record(now: number): void {
    this.#prune(now);
    this.#failures.push(now);
  }

  /** When starts are allowed again (ms), or undefined when they are allowed now. */
  blockedUntil(now: number): number | undefined {
    this.#prune(now);
    const over = this.#failures.length - this.#limit;
    if (over <= 0) return undefined;
    // Starts resume once the window holds `limit` failures again.
    return (this.#failures[over - 1] as number) + MINUTE_MS;
  }

  #prune(now: number): void {
    while (this.#failures.length > 0 && (this.#failures[0] as number) <= now - MINUTE_MS) this.#failures.shift();
  }
}
