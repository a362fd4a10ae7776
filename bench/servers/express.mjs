// The examples/hello routes on express, as its docs recommend (express defaults kept,
// such as ETag and X-Powered-By).
import express from "express";

const port = Number(process.env.PORT ?? 3000);
const app = express();

app.get("/", (_req, res) => {
  res.type("text/plain").send("Hello, World!");
});
app.get("/json", (_req, res) => {
  res.json({ message: "Hello, World!" });
});
app.post("/echo", (req, res) => {
  res.type(req.get("content-type") ?? "application/octet-stream");
  req.pipe(res);
});

const server = app.listen(port, "127.0.0.1", () => console.log(`Now listening on: http://127.0.0.1:${port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
