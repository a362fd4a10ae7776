// The hello app (examples/hello) on the custom SocketServer: the same routes, unchanged;
// only the `server` option differs. `npm run build && npm start` in this folder serves
// it on http://localhost:5000, or on the addresses in PEREGRINE_URLS.
import { WebApplication } from "peregrine";
import { SocketServer } from "./socket-server.js";

const app = WebApplication.create({ server: new SocketServer() });

app.mapGet("/", () => "Hello, World!");
app.mapGet("/json", () => ({ message: "Hello, World!" }));
app.mapPost("/echo", (ctx) => ctx.request.body);

await app.run();
