// Test helpers shared by every test file: start an app on a free loopback port, and
// talk to it over raw sockets when fetch would hide what is on the wire.
import net from "node:net";
import { silentLogger, WebApplication, type WebApplicationOptions } from "peregrine";

/** Creates an app on 127.0.0.1:0 with logging off, lets `configure` add routes, starts it. */
export async function startApp(
  configure: (app: WebApplication) => void,
  options: WebApplicationOptions = {},
): Promise<{ app: WebApplication; url: string; port: number }> {
  const app = WebApplication.create({ urls: ["http://127.0.0.1:0"], logger: silentLogger, ...options });
  configure(app);
  await app.start();
  const url = app.urls[0] as string;
  return { app, url, port: Number(new URL(url).port) };
}

/** A raw TCP connection with helpers to read what the server sends. */
export class RawClient {
  readonly socket: net.Socket;
  #buffer = Buffer.alloc(0);
  #waiters: (() => void)[] = [];
  #closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake();
    });
    socket.on("close", () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on("error", () => {});
  }

  static connect(port: number, host = "127.0.0.1"): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, host, () => resolve(new RawClient(socket)));
      socket.once("error", reject);
    });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  get closed(): boolean {
    return this.#closed;
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Waits until `predicate` holds for the bytes received so far, or the timeout. */
  async waitFor(predicate: (received: Buffer) => boolean, timeoutMs = 10_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.#buffer)) {
      if (this.#closed) throw new Error(`connection closed; received: ${this.#buffer.toString("latin1")}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; received: ${this.#buffer.toString("latin1")}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.#buffer;
  }

  /** Waits until the server closes the connection; returns everything received. */
  async waitForClose(timeoutMs = 10_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for the server to close");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.#buffer;
  }

  /** Counts complete HTTP/1.1 responses with Content-Length bodies received so far. */
  static countResponses(received: Buffer): number {
    return received.toString("latin1").split("HTTP/1.1 ").length - 1;
  }

  take(): string {
    const text = this.#buffer.toString("latin1");
    this.#buffer = Buffer.alloc(0);
    return text;
  }

  close(): void {
    this.socket.destroy();
  }
}
