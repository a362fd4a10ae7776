// An HTTP/2 client for tests, over node:http2: one session, requests that collect the
// status, headers, body, trailers and the RST_STREAM code.
import http2 from "node:http2";

export interface H2Response {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders | undefined;
  /** The RST_STREAM error code when the server reset the stream, else 0. */
  rstCode: number;
  streamId: number | undefined;
}

export interface H2RequestOptions {
  method?: string;
  path?: string;
  headers?: http2.OutgoingHttpHeaders;
  body?: Buffer | string | AsyncIterable<Buffer>;
  trailers?: http2.OutgoingHttpHeaders;
  timeoutMs?: number;
}

export function connectH2(
  url: string,
  options: http2.SecureClientSessionOptions = {},
): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url, options);
    session.once("connect", () => resolve(session));
    session.once("error", reject);
    // Errors after connect surface on the streams; keep the process from crashing.
    session.on("error", () => {});
  });
}

export function h2Request(session: http2.ClientHttp2Session, options: H2RequestOptions = {}): Promise<H2Response> {
  const { method = "GET", path = "/", headers = {}, body, trailers, timeoutMs = 20_000 } = options;
  return new Promise((resolve, reject) => {
    const stream = session.request(
      { ":method": method, ":path": path, ...headers },
      { endStream: body === undefined && trailers === undefined, waitForTrailers: trailers !== undefined },
    );
    const timer = setTimeout(() => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      reject(new Error(`h2 request ${method} ${path} timed out`));
    }, timeoutMs);
    const chunks: Buffer[] = [];
    let status = 0;
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let responseTrailers: http2.IncomingHttpHeaders | undefined;
    stream.on("response", (h) => {
      responseHeaders = h;
      status = Number(h[":status"]);
    });
    stream.on("trailers", (t) => {
      responseTrailers = t;
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    if (trailers !== undefined) stream.on("wantTrailers", () => stream.sendTrailers(trailers));
    stream.on("error", () => {});
    stream.on("close", () => {
      clearTimeout(timer);
      resolve({
        status,
        headers: responseHeaders,
        body: Buffer.concat(chunks),
        trailers: responseTrailers,
        rstCode: stream.rstCode ?? 0,
        streamId: stream.id,
      });
    });
    if (body === undefined) {
      if (trailers !== undefined) stream.end();
    } else if (typeof body === "string" || Buffer.isBuffer(body)) {
      stream.end(body);
    } else {
      void (async () => {
        for await (const chunk of body) {
          if (!stream.write(chunk)) await new Promise((r) => stream.once("drain", r));
        }
        stream.end();
      })();
    }
  });
}

export function closeSession(session: http2.ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => {
    if (session.closed || session.destroyed) return resolve();
    session.close(() => resolve());
    setTimeout(() => {
      session.destroy();
      resolve();
    }, 2000).unref();
  });
}
