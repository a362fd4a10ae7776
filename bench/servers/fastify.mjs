// The examples/hello routes on fastify, as its docs recommend: return values from
// async handlers, and a catch-all content-type parser that hands the raw request
// stream to the echo route so the body is streamed, not buffered.
import Fastify from "fastify";

const port = Number(process.env.PORT ?? 3000);
const app = Fastify({ logger: false });

app.get("/", async () => "Hello, World!");
app.get("/json", async () => ({ message: "Hello, World!" }));

app.register(async (echo) => {
  echo.removeAllContentTypeParsers();
  echo.addContentTypeParser("*", (_request, payload, done) => done(null, payload));
  echo.post("/echo", (request, reply) => {
    reply.header("content-type", request.headers["content-type"] ?? "application/octet-stream");
    return reply.send(request.body);
  });
});

await app.listen({ port, host: "127.0.0.1" });
console.log(`Now listening on: http://127.0.0.1:${port}`);
process.on("SIGTERM", () => app.close().then(() => process.exit(0)));
