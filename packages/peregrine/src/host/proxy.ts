import http from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { BadHttpRequestError, ErrorCodes } from "../errors.js";
import { IHttpUpgradeFeature } from "../features/index.js";
import { TOKEN_HEADER } from "../hosting/out-of-process.js";
import type { HttpContext, HttpRequest } from "../http/context.js";
import { REASON_PHRASES } from "../http/status.js";
import type { Logger } from "../logging.js";
import type { Upstream } from "./app-process.js";
import { LOOPBACK } from "./loopback.js";
import { AppUnavailableError, sendUnavailable } from "./unavailable.js";

/** Keep-alive connections to the app at most; more concurrent requests queue in the agent. */
export const MAX_UPSTREAM_CONNECTIONS = 256;

/** Responses declaring at most this many bytes are buffered and sent whole. */
const WHOLE_RESPONSE_MAX = 64 * 1024;

/** Hop-by-hop headers (RFC 9110 §7.6.1) and the ones this hop owns; never forwarded either way. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "transfer-encoding",
  "upgrade",
  // Trailers are not forwarded, so neither is the header announcing them.
  "trailer",
]);

/**
 * Request headers the host sets itself. A client's own forwarded headers are dropped:
 * the host is the edge, and the app trusts exactly one hop (the host).
 */
const REPLACED_ON_REQUEST = new Set([
  "host",
  "expect",
  "content-length",
  "forwarded",
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  TOKEN_HEADER,
]);

/** Header names a Connection header lists: hop-by-hop for this message only. */
function connectionListed(values: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const value of values) {
    for (const name of value.split(",")) {
      const trimmed = name.trim().toLowerCase();
      if (trimmed !== "") names.add(trimmed);
    }
  }
  return names;
}

/** How the request body goes to the app; "peek" decides on the body's first chunk. */
type Framing = "length" | "chunked" | "none" | "peek";

function framingOf(request: HttpRequest): Framing {
  const headers = request.headers;
  if (headers.has("content-length")) return "length";
  if (headers.has("transfer-encoding")) return "chunked";
  // An HTTP/1 request with neither header has no body; over HTTP/2 only the stream tells.
  return request.protocol === "HTTP/2" ? "peek" : "none";
}

/** The origin-form target the app gets: an absolute-form target is reduced to path and query. */
function targetOf(request: HttpRequest): string {
  const raw = request.rawTarget;
  if (raw.startsWith("/") || raw === "*") return raw;
  const url = new URL(raw);
  return `${url.pathname}${url.search}`;
}

function upstreamHeaders(ctx: HttpContext, upstream: Upstream): http.OutgoingHttpHeaders {
  const request = ctx.request;
  const listed = connectionListed(request.headers.getAll("connection"));
  const headers: Record<string, string | string[]> = {};
  const cookies: string[] = [];
  for (const [name, value] of request.headers.entries()) {
    if (name.startsWith(":") || HOP_BY_HOP.has(name) || REPLACED_ON_REQUEST.has(name) || listed.has(name)) continue;
    // HTTP/2 splits cookies into several fields; HTTP/1.1 wants one (RFC 9113 §8.2.3).
    if (name === "cookie") cookies.push(value);
    else {
      const existing = headers[name];
      if (existing === undefined) headers[name] = value;
      else if (typeof existing === "string") headers[name] = [existing, value];
      else existing.push(value);
    }
  }
  if (cookies.length > 0) headers.cookie = cookies.join("; ");
  const length = request.headers.get("content-length");
  if (length !== undefined) headers["content-length"] = length;
  headers.host = `${LOOPBACK}:${upstream.port}`;
  headers["x-forwarded-for"] = ctx.connection.remoteAddress;
  headers["x-forwarded-proto"] = request.scheme;
  const host = request.host;
  if (host !== "") headers["x-forwarded-host"] = host;
  headers[TOKEN_HEADER] = upstream.token;
  return headers;
}

/** The request to the app for the client's `ctx`, over `agent` (false: a connection of its own). */
function upstreamRequest(
  ctx: HttpContext,
  upstream: Upstream,
  headers: http.OutgoingHttpHeaders,
  agent: http.Agent | false,
): http.ClientRequest {
  return http.request({
    agent,
    host: LOOPBACK,
    port: upstream.port,
    method: ctx.request.method,
    path: targetOf(ctx.request),
    headers,
    setHost: false,
  });
}

/** Resolves when the upstream request can take more body, rejects if it closes first. */
function drained(outgoing: http.ClientRequest): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      outgoing.off("close", onClose);
      resolve();
    };
    const onClose = () => {
      outgoing.off("drain", onDrain);
      reject(new Error("the connection to the application closed while sending the request body"));
    };
    outgoing.once("drain", onDrain);
    outgoing.once("close", onClose);
  });
}

/**
 * Streams the client's body to the app, one chunk at a time as the app takes it. A
 * failure (the client broke off, the app closed) destroys the upstream request with it.
 */
async function sendBody(
  outgoing: http.ClientRequest,
  body: AsyncIterator<Uint8Array>,
  first: IteratorResult<Uint8Array> | undefined,
): Promise<void> {
  try {
    let next = first ?? (await body.next());
    while (!next.done) {
      if (!outgoing.write(next.value)) await drained(outgoing);
      next = await body.next();
    }
    outgoing.end();
  } catch (error) {
    outgoing.destroy(error as Error);
  }
}

function copyResponseHead(ctx: HttpContext, upstream: http.IncomingMessage): void {
  const response = ctx.response;
  const status = upstream.statusCode ?? 502;
  response.statusCode = status;
  const message = upstream.statusMessage;
  if (message !== undefined && message !== "" && message !== REASON_PHRASES[status]) response.reasonPhrase = message;
  const listed = connectionListed([upstream.headers.connection ?? ""]);
  const raw = upstream.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (HOP_BY_HOP.has(name) || listed.has(name)) continue;
    response.headers.append(name, raw[i + 1] as string);
  }
}

/** A write to the client failed: the client is gone, and nobody is left to answer. */
class ClientGone extends Error {}

async function toClient(write: Promise<void>): Promise<void> {
  try {
    await write;
  } catch (error) {
    throw new ClientGone("the response could not be written to the client", { cause: error });
  }
}

/**
 * Relays the app's response body. One that declares at most WHOLE_RESPONSE_MAX bytes is
 * sent whole, which costs one call into the server instead of one per chunk plus head
 * and end; anything else streams chunk by chunk as the client takes it.
 */
async function relayBody(ctx: HttpContext, incoming: http.IncomingMessage): Promise<void> {
  const response = ctx.response;
  const length = Number(incoming.headers["content-length"]);
  if (length <= WHOLE_RESPONSE_MAX) {
    const chunks: Buffer[] = [];
    for await (const chunk of incoming) chunks.push(chunk as Buffer);
    return toClient(response.end(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
  }
  for await (const chunk of incoming) await toClient(response.write(chunk as Buffer));
  await toClient(response.end());
}

/**
 * Copies bytes both ways between an upgraded client connection and the app's, with
 * backpressure, until both directions have ended; an error on either side, or one
 * side closing, tears down the other.
 */
function join(client: Duplex, app: Socket): Promise<void> {
  return new Promise((resolve) => {
    let open = 2;
    const done = () => {
      if (--open === 0) resolve();
    };
    const teardown = () => {
      client.destroy();
      app.destroy();
    };
    client.pipe(app).on("error", teardown);
    app.pipe(client).on("error", teardown);
    client.once("error", teardown);
    app.once("error", teardown);
    client.once("close", () => {
      app.destroy();
      done();
    });
    app.once("close", () => {
      // Let the client read what the app sent before it closed.
      client.end();
      done();
    });
  });
}

/**
 * Forwards requests to the app over loopback HTTP/1.1 with keep-alive, streaming both
 * bodies with backpressure. A client that goes away aborts the upstream request; an
 * upstream failure becomes a 502 before the response started, an abort after.
 */
export class Forwarder {
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: MAX_UPSTREAM_CONNECTIONS, scheduling: "lifo" });
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  async forward(ctx: HttpContext, upstream: Upstream): Promise<void> {
    const upgrade = ctx.features.get(IHttpUpgradeFeature);
    if (upgrade?.isUpgradableRequest) return this.#forwardUpgrade(ctx, upstream, upgrade);
    const request = ctx.request;
    const body = request.body[Symbol.asyncIterator]();
    let framing = framingOf(request);
    let first: IteratorResult<Uint8Array> | undefined;
    if (framing === "peek") {
      try {
        first = await body.next();
      } catch (error) {
        return this.#fail(ctx, error, upstream);
      }
      framing = first.done ? "none" : "chunked";
    }
    const headers = upstreamHeaders(ctx, upstream);
    if (framing === "chunked") headers["transfer-encoding"] = "chunked";
    const outgoing = upstreamRequest(ctx, upstream, headers, this.#agent);
    const onAbort = () => outgoing.destroy();
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    const answered = new Promise<http.IncomingMessage>((resolve, reject) => {
      outgoing.once("response", resolve);
      outgoing.once("error", reject);
    });
    let bodySent = framing === "none";
    if (bodySent) outgoing.end();
    else
      void sendBody(outgoing, body, first).then(() => {
        bodySent = true;
      });
    try {
      const incoming = await answered;
      // Later errors surface through the response stream.
      outgoing.on("error", () => {});
      copyResponseHead(ctx, incoming);
      await relayBody(ctx, incoming);
    } catch (error) {
      await this.#fail(ctx, error, upstream);
    } finally {
      ctx.signal.removeEventListener("abort", onAbort);
      // The app answered without reading the whole body: stop sending it. The send loop
      // ends on its own (it never throws), so it is not awaited: the client may stall.
      if (!bodySent) outgoing.destroy();
    }
  }

  /**
   * An upgrade request (a WebSocket handshake, say) goes to the app on a connection of
   * its own, outside the keep-alive pool. When the app answers 101, its headers go to
   * the client with the host's own 101, and from then on the two connections are
   * joined byte for byte until either side closes. Any other answer is relayed as a
   * response, after which the edge closes the client's connection (docs/upgrade.md).
   */
  async #forwardUpgrade(ctx: HttpContext, upstream: Upstream, upgrade: IHttpUpgradeFeature): Promise<void> {
    const headers = upstreamHeaders(ctx, upstream);
    headers.connection = "upgrade";
    headers.upgrade = ctx.request.headers.get("upgrade") ?? "";
    const outgoing = upstreamRequest(ctx, upstream, headers, false);
    const onAbort = () => outgoing.destroy();
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    try {
      const answer = await new Promise<
        | { kind: "response"; incoming: http.IncomingMessage }
        | { kind: "upgrade"; incoming: http.IncomingMessage; socket: Socket; head: Buffer }
      >((resolve, reject) => {
        outgoing.once("response", (incoming) => resolve({ kind: "response", incoming }));
        outgoing.once("upgrade", (incoming, socket, head) => resolve({ kind: "upgrade", incoming, socket, head }));
        outgoing.once("error", reject);
        outgoing.end();
      });
      outgoing.on("error", () => {});
      if (answer.kind === "response") {
        copyResponseHead(ctx, answer.incoming);
        await relayBody(ctx, answer.incoming);
        return;
      }
      const { incoming, socket, head } = answer;
      copyResponseHead(ctx, incoming);
      const protocol = incoming.headers.upgrade;
      if (protocol !== undefined) ctx.response.headers.set("upgrade", protocol);
      let client: Duplex;
      try {
        client = await upgrade.upgrade();
      } catch (error) {
        // The app agreed, but the client's connection could not follow (it is gone, or
        // the edge is at maxConcurrentUpgradedConnections). No 101 was sent, so the
        // app's 101 head must not go out either: the client, if still there, gets 503.
        socket.destroy();
        this.#logger.warn({ err: error }, "The client's connection could not be upgraded");
        ctx.response.statusCode = 503;
        ctx.response.reasonPhrase = undefined;
        ctx.response.headers.clear();
        await toClient(ctx.response.end("The connection could not be upgraded."));
        return;
      }
      if (head.length > 0) client.write(head);
      await join(client, socket);
    } catch (error) {
      await this.#fail(ctx, error, upstream);
    } finally {
      ctx.signal.removeEventListener("abort", onAbort);
    }
  }

  async #fail(ctx: HttpContext, error: unknown, upstream: Upstream): Promise<void> {
    // The client went away: nobody to answer.
    if (ctx.signal.aborted || error instanceof ClientGone) {
      this.#logger.debug({ err: error }, "The client went away while the application's response was forwarded");
      return;
    }
    // The client's body was refused at the edge (too slow, bad framing): the edge answers.
    if (error instanceof BadHttpRequestError) throw error;
    const fields = { code: ErrorCodes.HOST_APP_UNREACHABLE, pid: upstream.pid, err: error };
    if (ctx.response.hasStarted) {
      this.#logger.warn(fields, "The application's response broke off; aborting the client's response");
      ctx.abort();
      return;
    }
    this.#logger.error(fields, "Forwarding to the application failed");
    await sendUnavailable(
      ctx,
      new AppUnavailableError(
        ErrorCodes.HOST_APP_UNREACHABLE,
        502,
        "The host could not get a response from the application.",
        { cause: error },
      ),
    );
  }

  /** Closes the kept-alive connections to the app. */
  close(): void {
    this.#agent.destroy();
  }
}
