// The examples/hello routes on Peregrine, with the options examples/hello does not
// take from the environment: `tls` from TLS_CERT and TLS_KEY (PEM file paths), for
// the TLS workloads; `limits.maxRequestBodySize` from MAX_REQUEST_BODY_SIZE (bytes,
// or "none"), for the 1 GiB echo; and `workers` from WORKERS, for the scaling mode.
// The addresses come from PEREGRINE_URLS.
import { readFileSync } from "node:fs";
import { WebApplication } from "peregrine";

const options = {};
if (process.env.TLS_CERT) {
  options.tls = { cert: readFileSync(process.env.TLS_CERT), key: readFileSync(process.env.TLS_KEY) };
}
const maxBody = process.env.MAX_REQUEST_BODY_SIZE;
if (maxBody) options.limits = { maxRequestBodySize: maxBody === "none" ? null : Number(maxBody) };
if (process.env.WORKERS) options.workers = Number(process.env.WORKERS);

const app = WebApplication.create(options);

app.mapGet("/", () => "Hello, World!");
app.mapGet("/json", () => ({ message: "Hello, World!" }));
app.mapPost("/echo", (ctx) => ctx.request.body);

await app.run();
