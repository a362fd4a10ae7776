// The hello app out of process: `peregrine host` listens on PORT and runs
// examples/hello as its child on a loopback port (docs/hosting.md). The harness stops
// servers with SIGTERM and SIGKILLs them after 3 s, so both shutdown steps get 1 s and
// the host never leaves its app behind.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { hostCommand } from "../../packages/peregrine/dist/host/command.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

process.exitCode = await hostCommand([
  "--app",
  path.join(root, "examples/hello/dist/main.js"),
  "--urls",
  `http://127.0.0.1:${process.env.PORT}`,
  "--eager",
  "--shutdown-timeout",
  "1000",
]);
