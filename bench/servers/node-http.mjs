// The examples/hello routes on plain node:http, written the idiomatic way: setHeader
// then end(body), so node sends Content-Length rather than a chunked body. With
// TLS_CERT and TLS_KEY (PEM file paths) it serves the same over node:https.
// KEEP_ALIVE_TIMEOUT_MS overrides node's 5 s keep-alive timeout, for the idle
// connections workload, which must hold its connections longer than that.
import { readFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { pipeline } from "node:stream";

const port = Number(process.env.PORT ?? 3000);

function hello(req, res) {
  if (req.method === "GET" && req.url === "/") {
    res.setHeader("content-type", "text/plain; charset=utf-8");
    res.end("Hello, World!");
  } else if (req.method === "GET" && req.url === "/json") {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ message: "Hello, World!" }));
  } else if (req.method === "POST" && req.url === "/echo") {
    res.setHeader("content-type", req.headers["content-type"] ?? "application/octet-stream");
    pipeline(req, res, () => {});
  } else {
    res.statusCode = 404;
    res.end();
  }
}

const tls = process.env.TLS_CERT
  ? { cert: readFileSync(process.env.TLS_CERT), key: readFileSync(process.env.TLS_KEY) }
  : undefined;
const server = tls ? createHttpsServer(tls, hello) : createHttpServer(hello);
if (process.env.KEEP_ALIVE_TIMEOUT_MS) server.keepAliveTimeout = Number(process.env.KEEP_ALIVE_TIMEOUT_MS);

server.listen(port, "127.0.0.1", () => console.log(`Now listening on: ${tls ? "https" : "http"}://127.0.0.1:${port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
