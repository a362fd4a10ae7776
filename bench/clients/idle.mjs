// The idle-connections client: opens `--connections` keep-alive connections to
// 127.0.0.1:`--port` (at most 256 connecting at once), sends one `GET /` on each and
// reads the whole answer, then leaves them idle. When all have answered it prints
// `READY {...}` and waits; on a `close` line on stdin it counts the connections still
// open, closes them all and prints BENCH_JSON {connections, open, failed,
// closedByServer, connectMs}. Exits 1 when the connections are not all answered
// within --timeout-ms.
//
//     node bench/clients/idle.mjs --port=5000 --connections=10000
import { connect } from "node:net";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { port: { type: "string" }, connections: { type: "string" }, "timeout-ms": { type: "string" } },
});
const port = Number(values.port);
const wanted = Number(values.connections ?? 10_000);
const timeoutMs = Number(values["timeout-ms"] ?? 60_000);
if (!Number.isInteger(port) || !Number.isInteger(wanted) || wanted <= 0) {
  console.error("usage: idle.mjs --port=PORT [--connections=N] [--timeout-ms=MS]");
  process.exit(2);
}

const CONCURRENT_CONNECTS = 256;
const request = Buffer.from("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
const sockets = [];
let failed = 0;
let closedByServer = 0;

/** Whether `data` holds one whole response with a Content-Length body. */
function complete(data) {
  const end = data.indexOf("\r\n\r\n");
  if (end < 0) return false;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(data.subarray(0, end).toString("latin1"));
  return length !== null && data.length >= end + 4 + Number(length[1]);
}

/** Opens one connection and resolves once its response has arrived (or it failed). */
function openOne() {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1" });
    let data = Buffer.alloc(0);
    let answered = false;
    const settle = (ok) => {
      if (answered) return;
      answered = true;
      if (ok) sockets.push(socket);
      else failed++;
      resolve();
    };
    socket.once("connect", () => socket.write(request));
    socket.on("data", (chunk) => {
      if (answered) return;
      data = Buffer.concat([data, chunk]);
      if (complete(data)) settle(data.subarray(0, 12).toString("latin1") === "HTTP/1.1 200");
    });
    socket.once("error", () => settle(false));
    socket.once("close", () => {
      if (answered && !socket.closedByUs) closedByServer++;
      settle(false);
    });
  });
}

const started = performance.now();
const deadline = setTimeout(() => {
  console.error(`${sockets.length + failed} of ${wanted} connections answered within ${timeoutMs} ms`);
  process.exit(1);
}, timeoutMs);
let next = 0;
await Promise.all(
  Array.from({ length: Math.min(CONCURRENT_CONNECTS, wanted) }, async () => {
    while (next < wanted) {
      next++;
      await openOne();
    }
  }),
);
clearTimeout(deadline);
const connectMs = performance.now() - started;
console.log(`READY ${JSON.stringify({ open: sockets.length, failed, connectMs })}`);

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() !== "close") continue;
  const open = sockets.filter((s) => !s.destroyed && s.readyState === "open").length;
  for (const socket of sockets) {
    socket.closedByUs = true;
    socket.destroy();
  }
  console.log(`BENCH_JSON ${JSON.stringify({ connections: wanted, open, failed, closedByServer, connectMs })}`);
  process.exit(0);
}
