// The examples/hello routes on plain node:http, written the idiomatic way: setHeader
// then end(body), so node sends Content-Length rather than a chunked body.
import { createServer } from "node:http";
import { pipeline } from "node:stream";

const port = Number(process.env.PORT ?? 3000);

const server = createServer((req, res) => {
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
});

server.listen(port, "127.0.0.1", () => console.log(`Now listening on: http://127.0.0.1:${port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
