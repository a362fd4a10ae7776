import { ErrorCodes, PeregrineError } from "../../errors.js";
import { FeatureCollection, type IFeatureCollection, IServerAddressesFeature } from "../../features/index.js";
import { HeaderDictionary } from "../../http/headers.js";
import { createConsoleLogger, type Logger } from "../../logging.js";
import { dispatch } from "../../server/dispatch.js";
import { resolveLimits, resolveShutdownTimeout, type ServerLimits } from "../../server/limits.js";
import type { IHttpApplication, IServer } from "../../server/server.js";
import type { BodyReader } from "../request-body.js";
import { TestExchange, type TestExchangeOwner } from "./test-exchange.js";

export interface TestServerOptions {
  /** What relative URLs given to fetch() resolve against. Default "http://localhost/". */
  baseAddress?: string;
  /** Limits; the test server enforces maxRequestBodySize and maxResponseBufferSize. */
  limits?: Parameters<typeof resolveLimits>[0];
  /** Milliseconds in-flight requests get to finish on stop(). Default 30000. */
  shutdownTimeout?: number;
  /** Default: the console, at PEREGRINE_LOG_LEVEL or "info". */
  logger?: Logger;
}

/** A request body already in memory, handed over in one chunk. */
function bufferReader(bytes: Uint8Array): BodyReader {
  let done = false;
  return {
    read: () => {
      if (done) return Promise.resolve(null);
      done = true;
      return Promise.resolve(bytes);
    },
    cancel: () => {
      done = true;
    },
  };
}

/** A streamed request body, pulled from the client's ReadableStream as the app reads. */
function streamReader(stream: ReadableStream<Uint8Array>): BodyReader {
  const reader = stream.getReader();
  let cancelled = false;
  return {
    read: async () => {
      if (cancelled) return null;
      const { value, done } = await reader.read();
      if (done || cancelled) return null;
      return value;
    },
    cancel: () => {
      if (cancelled) return;
      cancelled = true;
      reader.cancel().catch(() => {});
    },
  };
}

function isStreamBody(body: unknown): boolean {
  return body instanceof ReadableStream || (typeof body === "object" && body !== null && Symbol.asyncIterator in body);
}

/**
 * An in-memory server for app tests, like ASP.NET Core's TestHost: it opens no sockets.
 * `fetch()` builds the request features straight from a fetch Request, runs the app's
 * whole pipeline, and returns a standard fetch Response once the app sends the head.
 * Bodies stream both ways: a ReadableStream request body is pulled as the app reads
 * it, and the response body is a ReadableStream fed as the app writes.
 *
 *     const server = new TestServer();
 *     const app = WebApplication.create({ server });
 *     app.mapGet("/", () => "hi");
 *     await app.start();
 *     const res = await server.fetch("/");
 */
export class TestServer implements IServer, TestExchangeOwner {
  readonly features: IFeatureCollection = new FeatureCollection();
  readonly logger: Logger;
  readonly baseAddress: URL;
  readonly #addresses: string[] = [];
  readonly #limits: ServerLimits;
  readonly #shutdownTimeout: number;
  readonly #exchanges = new Set<TestExchange>();
  #application: IHttpApplication<unknown> | undefined;
  #state: "created" | "started" | "stopping" | "stopped" = "created";
  #stopped: Promise<void> | undefined;
  #idle: (() => void) | undefined;
  #requests = 0;

  constructor(options: TestServerOptions = {}) {
    this.#limits = resolveLimits(options.limits);
    try {
      this.baseAddress = new URL(options.baseAddress ?? "http://localhost/");
    } catch (error) {
      throw new PeregrineError(
        ErrorCodes.INVALID_OPTION,
        `baseAddress = ${JSON.stringify(options.baseAddress)} is not an absolute URL`,
        {
          cause: error,
        },
      );
    }
    this.#shutdownTimeout = resolveShutdownTimeout(options.shutdownTimeout);
    this.logger = options.logger ?? createConsoleLogger();
    this.features.set(IServerAddressesFeature, { addresses: this.#addresses });
  }

  get responseBufferSize(): number {
    return this.#limits.maxResponseBufferSize;
  }

  /** Requests currently in flight. */
  get inFlight(): number {
    return this.#exchanges.size;
  }

  start<TContext>(application: IHttpApplication<TContext>): Promise<void> {
    if (this.#state !== "created") {
      return Promise.reject(new PeregrineError(ErrorCodes.ALREADY_STARTED, "the test server was already started"));
    }
    this.#application = application as IHttpApplication<unknown>;
    this.#state = "started";
    this.#addresses.splice(0, this.#addresses.length, this.baseAddress.origin);
    return Promise.resolve();
  }

  /**
   * Sends a request through the app in memory; takes what the global fetch takes. The
   * promise settles with the Response once the app sends the head; it rejects when the
   * app aborts first (TypeError "fetch failed", as on the wire) or `init.signal` fires.
   */
  async fetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    if (this.#state !== "started") {
      throw new PeregrineError(
        this.#state === "created" ? ErrorCodes.SERVER_NOT_STARTED : ErrorCodes.SERVER_STOPPED,
        this.#state === "created"
          ? "the test server has not started: call app.start() first"
          : "the test server is stopped",
      );
    }
    const url = input instanceof Request ? new URL(input.url) : new URL(input, this.baseAddress);
    const rawBody = init?.body ?? (input instanceof Request ? input.body : undefined);
    const request = new Request(input instanceof Request ? input : url, {
      ...init,
      ...(init?.body !== undefined && init.body !== null && isStreamBody(init.body) ? { duplex: "half" } : {}),
    } as RequestInit);
    request.signal.throwIfAborted();

    // Repeated headers given as pairs stay apart, as on the wire; fetch's Headers would join them.
    const headers = new HeaderDictionary(
      Array.isArray(init?.headers) ? (init.headers as [string, string][]) : [...request.headers],
    );
    if (!headers.has("host")) headers.set("host", url.host);
    const contentType = request.headers.get("content-type");
    if (contentType !== null && !headers.has("content-type")) headers.set("content-type", contentType);

    let body: BodyReader | undefined;
    let contentLength: number | undefined;
    if (request.body !== null) {
      if (isStreamBody(rawBody)) body = streamReader(request.body);
      else {
        const bytes = new Uint8Array(await request.arrayBuffer());
        contentLength = bytes.byteLength;
        if (!headers.has("content-length")) headers.set("content-length", contentLength);
        if (bytes.byteLength > 0) body = bufferReader(bytes);
      }
    }

    const exchange = new TestExchange(this, {
      url,
      method: request.method,
      headers,
      body,
      contentLength,
      connectionId: 1,
      requestNumber: ++this.#requests,
      limits: this.#limits,
    });
    this.#exchanges.add(exchange);
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    if (signal) {
      const onAbort = () => exchange.clientAbort(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      exchange.onCompleted(() => signal.removeEventListener("abort", onAbort));
    }
    this.#dispatch(exchange);
    return exchange.response;
  }

  #dispatch(exchange: TestExchange): void {
    const application = this.#application as IHttpApplication<unknown>;
    dispatch(application, exchange, this.logger);
  }

  release(exchange: TestExchange): void {
    this.#exchanges.delete(exchange);
    if (this.#exchanges.size === 0) this.#idle?.();
  }

  /** Refuses new requests, gives in-flight ones shutdownTimeout to finish, then aborts them. */
  stop(signal?: AbortSignal): Promise<void> {
    if (this.#state === "created") {
      this.#state = "stopped";
      return Promise.resolve();
    }
    this.#stopped ??= new Promise<void>((resolve) => {
      this.#state = "stopping";
      let timer: NodeJS.Timeout | undefined;
      const force = () => {
        for (const exchange of [...this.#exchanges]) exchange.abort();
      };
      this.#idle = () => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", force);
        this.#state = "stopped";
        resolve();
      };
      if (this.#exchanges.size === 0) {
        this.#idle();
        return;
      }
      if (signal?.aborted) force();
      else {
        signal?.addEventListener("abort", force, { once: true });
        timer = setTimeout(force, this.#shutdownTimeout);
      }
    });
    return this.#stopped;
  }
}
