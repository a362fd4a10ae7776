// The hello app: `npm start` serves it on http://localhost:5000, or on the addresses
// in PEREGRINE_URLS. The bench harness and the pure-Rust twin
// (crates/peregrine-core/examples/hello.rs) serve the same routes.
import { WebApplication } from "peregrine";

const app = WebApplication.create();

app.mapGet("/", () => "Hello, World!");
app.mapGet("/json", () => ({ message: "Hello, World!" }));
app.mapPost("/echo", (ctx) => ctx.request.body);

await app.run();
