// A custom Peregrine server on node:net, written to show how small the server contract
// is. It parses HTTP/1.1 itself and supplies only the features the contract needs:
//
//   - IHttpRequestFeature       the request line, headers and body
//   - IHttpResponseFeature      status, headers, onStarting / onCompleted
//   - IHttpResponseBodyFeature  writing the body (the host writes results through it)
//
// and, at server level, IServerAddressesFeature. Everything else an app may ask for
// (ctx.signal, ctx.connection, limits, TLS) is absent here, and the app learns so
// through `ctx.features.get(...)` returning undefined. docs/custom-servers.md walks
// through this file.
//
// The parser is good enough for an example, not for the internet: no request
// smuggling defences, no header or body limits, no timeouts. Use NativeServer or
// NodeServer for real traffic.
import net from "node:net";
import {
  type BodyChunk,
  ErrorCodes,
  FeatureCollection,
  HeaderDictionary,
  type IFeatureCollection,
  type IHttpApplication,
  type IHttpRequestFeature,
  type IHttpResponseBodyFeature,
  type IHttpResponseFeature,
  type IServer,
  IServerAddressesFeature,
  PeregrineError,
  REASON_PHRASES,
  IHttpRequestFeature as RequestFeature,
  IHttpResponseBodyFeature as ResponseBodyFeature,
  IHttpResponseFeature as ResponseFeature,
} from "peregrine";

const CRLF = Buffer.from("\r\n");
const HEAD_END = Buffer.from("\r\n\r\n");

/** Reads a socket on demand: the socket is paused whenever nobody is waiting for bytes. */
class SocketReader {
  #buffer: Buffer = Buffer.alloc(0);
  #ended = false;
  #wake: (() => void) | undefined;

  constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
      socket.pause();
      this.#notify();
    });
    socket.on("end", () => this.#end());
    socket.on("close", () => this.#end());
    socket.on("error", () => this.#end());
    socket.pause();
  }

  #end(): void {
    this.#ended = true;
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** True while the connection waits for a request that has not begun to arrive. */
  waiting = false;

  get buffered(): number {
    return this.#buffer.length;
  }

  /** Waits for more bytes; false once the peer has gone. */
  async #more(): Promise<boolean> {
    if (this.#ended) return false;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      this.socket.resume();
    });
    return true;
  }

  /** Everything up to `delimiter` (which is consumed); null if the peer closed first. */
  async until(delimiter: Buffer): Promise<Buffer | null> {
    for (;;) {
      const at = this.#buffer.indexOf(delimiter);
      if (at >= 0) {
        const head = this.#buffer.subarray(0, at);
        this.#buffer = this.#buffer.subarray(at + delimiter.length);
        return head;
      }
      if (!(await this.#more())) return null;
    }
  }

  /** Up to `max` bytes, at least one; null if the peer closed first. */
  async some(max: number): Promise<Buffer | null> {
    while (this.#buffer.length === 0) if (!(await this.#more())) return null;
    const chunk = this.#buffer.subarray(0, max);
    this.#buffer = this.#buffer.subarray(chunk.length);
    return chunk;
  }
}

/** A request the parser refuses; the connection answers 400 and closes. */
class BadRequest extends Error {}

interface RequestHead {
  method: string;
  target: string;
  version: string;
  headers: HeaderDictionary;
}

function parseHead(head: Buffer): RequestHead {
  const lines = head.toString("latin1").split("\r\n");
  const [method, target, version] = (lines[0] ?? "").split(" ");
  if (!method || !target || (version !== "HTTP/1.1" && version !== "HTTP/1.0"))
    throw new BadRequest("bad request line");
  const headers = new HeaderDictionary();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new BadRequest("bad header line");
    headers.append(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return { method, target, version, headers };
}

/** How far the app read the request body. */
interface BodyState {
  started: boolean;
  complete: boolean;
}

/** The request body, framed by Content-Length or chunked transfer coding. */
async function* readBody(
  reader: SocketReader,
  headers: HeaderDictionary,
  state: BodyState,
): AsyncGenerator<Uint8Array> {
  state.started = true;
  if (headers.get("transfer-encoding")?.toLowerCase() === "chunked") {
    for (;;) {
      const sizeLine = await reader.until(CRLF);
      if (sizeLine === null) throw new Error("the connection closed inside a chunked body");
      let size = Number.parseInt(sizeLine.toString("latin1"), 16);
      if (Number.isNaN(size)) throw new BadRequest("bad chunk size");
      if (size === 0) {
        // Trailers, if any, up to the empty line; this example drops them.
        while (((await reader.until(CRLF)) ?? Buffer.alloc(0)).length > 0);
        state.complete = true;
        return;
      }
      while (size > 0) {
        const chunk = await reader.some(size);
        if (chunk === null) throw new Error("the connection closed inside a chunk");
        size -= chunk.length;
        yield chunk;
      }
      await reader.until(CRLF);
    }
  }
  let left = Number(headers.get("content-length") ?? "0");
  if (!Number.isSafeInteger(left) || left < 0) throw new BadRequest("bad content-length");
  while (left > 0) {
    const chunk = await reader.some(Math.min(left, 65_536));
    if (chunk === null) throw new Error("the connection closed inside the body");
    left -= chunk.length;
    yield chunk;
  }
  state.complete = true;
}

type Callback = () => void | Promise<void>;

/**
 * One exchange: the feature collection. The request feature is a plain object; this
 * class implements the response and response-body features itself.
 */
class SocketExchange extends FeatureCollection implements IHttpResponseFeature, IHttpResponseBodyFeature {
  readonly request: IHttpRequestFeature;
  #statusCode = 200;
  reasonPhrase: string | undefined;
  headers = new HeaderDictionary();
  hasStarted = false;
  isCompleted = false;
  /** Whether the response frames its body with chunked coding (no Content-Length was set). */
  #chunked = false;
  #onStarting: Callback[] = [];
  #onCompleted: Callback[] = [];

  constructor(
    readonly socket: net.Socket,
    readonly head: RequestHead,
    body: AsyncIterable<Uint8Array>,
  ) {
    super();
    const q = head.target.indexOf("?");
    const rawPath = q < 0 ? head.target : head.target.slice(0, q);
    // Percent-decoded, except %2F: an encoded slash must not become a path separator.
    let path: string;
    try {
      path = rawPath.split(/%2f/i).map(decodeURIComponent).join("%2F");
    } catch {
      path = rawPath;
    }
    this.request = {
      protocol: head.version,
      scheme: "http",
      method: head.method,
      pathBase: "",
      path,
      queryString: q < 0 ? "" : head.target.slice(q),
      rawTarget: head.target,
      headers: head.headers,
      body,
    };
    this.set(RequestFeature, this.request);
    this.set<IHttpResponseFeature>(ResponseFeature, this);
    this.set<IHttpResponseBodyFeature>(ResponseBodyFeature, this);
  }

  get statusCode(): number {
    return this.#statusCode;
  }
  set statusCode(value: number) {
    if (this.hasStarted)
      throw new PeregrineError(
        ErrorCodes.RESPONSE_STARTED,
        "the status code cannot change after the response has started",
      );
    this.#statusCode = value;
  }

  onStarting(callback: Callback): void {
    this.#onStarting.push(callback);
  }

  onCompleted(callback: Callback): void {
    this.#onCompleted.push(callback);
  }

  get #noBody(): boolean {
    return this.head.method === "HEAD" || this.statusCode === 204 || this.statusCode === 304;
  }

  /** Sends the status line and headers. */
  async start(): Promise<void> {
    if (this.hasStarted) return;
    for (const callback of this.#onStarting.reverse()) await callback();
    this.#onStarting = [];
    this.hasStarted = true;
    this.headers.lock();
    this.#chunked = !this.#noBody && !this.headers.has("content-length");
    this.#sendHead(this.#chunked ? [["transfer-encoding", "chunked"]] : []);
  }

  #sendHead(extra: [string, string][]): void {
    const reason = this.reasonPhrase ?? REASON_PHRASES[this.statusCode] ?? "";
    let head = `HTTP/1.1 ${this.statusCode} ${reason}\r\n`;
    for (const [name, value] of [...this.headers, ...extra]) head += `${name}: ${value}\r\n`;
    this.socket.write(`${head}\r\n`, "latin1");
  }

  /** Resolves once the socket is ready for more: this is the backpressure. */
  async write(chunk: BodyChunk): Promise<void> {
    if (this.isCompleted) throw new Error("the response has completed");
    await this.start();
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    if (this.#noBody || bytes.length === 0) return;
    const ready = this.#chunked
      ? this.socket.write(Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, CRLF]))
      : this.socket.write(bytes);
    if (!ready) await new Promise<void>((resolve) => this.socket.once("drain", resolve).once("close", resolve));
  }

  async flush(): Promise<void> {
    await this.start();
  }

  /** Ends the response. A response that never started goes out whole, with Content-Length. */
  async complete(chunk?: BodyChunk): Promise<void> {
    if (this.isCompleted) return;
    if (!this.hasStarted) {
      for (const callback of this.#onStarting.reverse()) await callback();
      this.hasStarted = true;
      this.headers.lock();
      const bytes =
        chunk === undefined ? Buffer.alloc(0) : typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk);
      const length: [string, string][] =
        this.headers.has("content-length") || this.statusCode === 204 || this.statusCode === 304
          ? []
          : [["content-length", String(bytes.length)]];
      this.#sendHead(length);
      if (!this.#noBody && bytes.length > 0) this.socket.write(bytes);
    } else {
      if (chunk !== undefined) await this.write(chunk);
      if (this.#chunked) this.socket.write("0\r\n\r\n");
    }
    this.isCompleted = true;
    for (const callback of this.#onCompleted.reverse()) await callback();
  }
}

/**
 * The URL forms this example binds: http://<IPv4 | [IPv6] | localhost>:<port>. Like the
 * built-in servers, localhost means both loopback addresses, on one port.
 */
function parseUrl(url: string): { hosts: string[]; port: number } {
  const match = /^http:\/\/(\[[^\]]+\]|[^:/]+):(\d+)\/?$/.exec(url);
  if (match === null)
    throw new Error(`SocketServer cannot listen on "${url}": use http://<ip>:<port> or http://localhost:<port>`);
  const host = (match[1] as string).replace(/^\[|\]$/g, "");
  return { hosts: host === "localhost" ? ["127.0.0.1", "::1"] : [host], port: Number(match[2]) };
}

function listen(listener: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    listener.once("error", reject);
    listener.listen({ host, port, ipv6Only: host.includes(":") }, () => resolve());
  });
}

/** A minimal HTTP/1.1 server: the request and response features over node:net. */
export class SocketServer implements IServer {
  readonly features: IFeatureCollection = new FeatureCollection();
  readonly #addresses: string[] = [];
  readonly #listeners: net.Server[] = [];
  /** Open connections and their readers (which know whether a connection is between requests). */
  readonly #connections = new Map<net.Socket, SocketReader>();
  #application: IHttpApplication<unknown> | undefined;
  #stopping = false;

  constructor() {
    this.features.set(IServerAddressesFeature, { addresses: this.#addresses });
  }

  async start<TContext>(application: IHttpApplication<TContext>): Promise<void> {
    this.#application = application as IHttpApplication<unknown>;
    const bound: string[] = [];
    for (const url of this.#addresses) {
      let { hosts, port } = parseUrl(url);
      for (const host of hosts) {
        const listener = net.createServer((socket) => void this.#serve(socket));
        await listen(listener, host, port);
        this.#listeners.push(listener);
        const address = listener.address() as net.AddressInfo;
        port = address.port; // with port 0, the second loopback address takes the first one's port
        bound.push(`http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`);
      }
    }
    // The server-addresses feature reports what was bound: port 0 resolved.
    this.#addresses.splice(0, this.#addresses.length, ...bound);
  }

  /** Serves one connection: request after request until the client or the server closes it. */
  async #serve(socket: net.Socket): Promise<void> {
    socket.setNoDelay(true);
    const reader = new SocketReader(socket);
    this.#connections.set(socket, reader);
    socket.once("close", () => this.#connections.delete(socket));
    try {
      while (!this.#stopping) {
        reader.waiting = true;
        const rawHead = await reader.until(HEAD_END);
        reader.waiting = false;
        if (rawHead === null) break;
        const head = parseHead(rawHead);
        const state: BodyState = { started: false, complete: false };
        const body = readBody(reader, head.headers, state);
        const exchange = new SocketExchange(socket, head, body);
        await this.#process(exchange);
        // A body the app never read is skipped, so the next request starts in the right
        // place; one it stopped reading halfway cannot be, so the connection closes.
        if (!state.started) for await (const _ of body);
        const close = head.version === "HTTP/1.0" || head.headers.get("connection")?.toLowerCase() === "close";
        if (close || !state.complete || socket.destroyed) break;
      }
      socket.end();
    } catch (error) {
      if (error instanceof BadRequest && !socket.destroyed) {
        socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
      } else socket.destroy();
    }
  }

  /** Runs the app, then completes whatever response it left open (the server's job). */
  async #process(exchange: SocketExchange): Promise<void> {
    const application = this.#application as IHttpApplication<unknown>;
    const context = application.createContext(exchange);
    let error: unknown;
    try {
      // processRequest never rejects; it returns undefined when it finished synchronously.
      await application.processRequest(context);
      if (!exchange.isCompleted) await exchange.complete();
    } catch (e) {
      error = e;
      exchange.socket.destroy();
    }
    application.disposeContext(context, error);
  }

  /**
   * Stops accepting, closes idle connections, lets busy ones finish their request, and
   * resolves when all are closed. An aborted `signal` closes the rest at once.
   */
  async stop(signal?: AbortSignal): Promise<void> {
    this.#stopping = true;
    const closed = this.#listeners.map((listener) => new Promise<void>((resolve) => listener.close(() => resolve())));
    for (const [socket, reader] of this.#connections) if (reader.waiting && reader.buffered === 0) socket.destroy();
    const force = () => {
      for (const socket of this.#connections.keys()) socket.destroy();
    };
    if (signal?.aborted) force();
    signal?.addEventListener("abort", force, { once: true });
    await Promise.all(closed);
    signal?.removeEventListener("abort", force);
  }
}
