// The examples/hello routes on hono with @hono/node-server, as their docs recommend.
import { serve } from "@hono/node-server";
import { Hono } from "hono";

const port = Number(process.env.PORT ?? 3000);
const app = new Hono();

app.get("/", (c) => c.text("Hello, World!"));
app.get("/json", (c) => c.json({ message: "Hello, World!" }));
// The request body is a web ReadableStream; handing it to the response streams it back.
app.post("/echo", (c) =>
  c.body(c.req.raw.body, 200, { "content-type": c.req.header("content-type") ?? "application/octet-stream" }),
);

const server = serve({ fetch: app.fetch, port, hostname: "127.0.0.1" }, (info) =>
  console.log(`Now listening on: http://127.0.0.1:${info.port}`),
);
process.on("SIGTERM", () => server.close(() => process.exit(0)));
