// The examples/hello routes on node:http2 with its core API (the 'stream' event, as
// the node:http2 docs recommend for performance): h2c by default, or a secure server
// (h2 by ALPN) with TLS_CERT and TLS_KEY (PEM file paths).
import { readFileSync } from "node:fs";
import { constants, createSecureServer, createServer } from "node:http2";
import { pipeline } from "node:stream";

const { HTTP2_HEADER_CONTENT_TYPE, HTTP2_HEADER_METHOD, HTTP2_HEADER_PATH, HTTP2_HEADER_STATUS } = constants;
const port = Number(process.env.PORT ?? 3000);

function hello(stream, headers) {
  const method = headers[HTTP2_HEADER_METHOD];
  const path = headers[HTTP2_HEADER_PATH];
  if (method === "GET" && path === "/") {
    stream.respond({ [HTTP2_HEADER_STATUS]: 200, [HTTP2_HEADER_CONTENT_TYPE]: "text/plain; charset=utf-8" });
    stream.end("Hello, World!");
  } else if (method === "GET" && path === "/json") {
    stream.respond({ [HTTP2_HEADER_STATUS]: 200, [HTTP2_HEADER_CONTENT_TYPE]: "application/json" });
    stream.end(JSON.stringify({ message: "Hello, World!" }));
  } else if (method === "POST" && path === "/echo") {
    stream.respond({
      [HTTP2_HEADER_STATUS]: 200,
      [HTTP2_HEADER_CONTENT_TYPE]: headers[HTTP2_HEADER_CONTENT_TYPE] ?? "application/octet-stream",
    });
    pipeline(stream, stream, () => {});
  } else {
    stream.respond({ [HTTP2_HEADER_STATUS]: 404 }, { endStream: true });
  }
}

const tls = process.env.TLS_CERT
  ? { cert: readFileSync(process.env.TLS_CERT), key: readFileSync(process.env.TLS_KEY) }
  : undefined;
const server = tls ? createSecureServer(tls) : createServer();
server.on("stream", hello);

server.listen(port, "127.0.0.1", () => console.log(`Now listening on: ${tls ? "https" : "http"}://127.0.0.1:${port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
