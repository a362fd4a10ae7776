// The streamed-echo client: POSTs `--bytes` to `--url` (HTTP/1.1, Content-Length, in
// 1 MiB writes that honour backpressure) while reading the echo back, checks every
// byte, and prints BENCH_JSON {bytes, seconds, mibps}. It never holds more than one
// chunk: the payload is a 251-byte period, so any offset's bytes are a slice of one
// small buffer. Exits 1 on a short, corrupt or late echo (--timeout-ms).
//
//     node bench/clients/echo.mjs --url=http://127.0.0.1:5000/echo --bytes=1073741824

import { once } from "node:events";
import { request } from "node:http";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { url: { type: "string" }, bytes: { type: "string" }, "timeout-ms": { type: "string" } },
});
const url = values.url;
const total = Number(values.bytes ?? 2 ** 30);
const timeoutMs = Number(values["timeout-ms"] ?? 300_000);
if (url === undefined || !Number.isSafeInteger(total) || total <= 0) {
  console.error("usage: echo.mjs --url=URL --bytes=N [--timeout-ms=MS]");
  process.exit(2);
}

const PERIOD = 251;
const CHUNK = 1 << 20;
const pattern = Buffer.alloc(CHUNK + PERIOD);
for (let i = 0; i < pattern.length; i++) pattern[i] = i % PERIOD;
/** The payload's bytes at `offset`, up to CHUNK of them. */
const payloadAt = (offset, length) => pattern.subarray(offset % PERIOD, (offset % PERIOD) + length);

function fail(message) {
  console.error(message);
  process.exit(1);
}
const timer = setTimeout(() => fail(`the echo of ${total} bytes took longer than ${timeoutMs} ms`), timeoutMs);

const started = process.hrtime.bigint();
const req = request(url, {
  method: "POST",
  agent: false,
  headers: { "content-type": "application/octet-stream", "content-length": String(total) },
});
req.on("error", (error) => fail(`the echo request failed: ${error.message}`));

const echoed = new Promise((resolve) => {
  req.on("response", (res) => {
    if (res.statusCode !== 200) fail(`POST answered ${res.statusCode}`);
    let received = 0;
    res.on("data", (chunk) => {
      for (let i = 0; i < chunk.length; i += CHUNK) {
        const part = chunk.subarray(i, i + CHUNK);
        if (!part.equals(payloadAt(received, part.length)))
          fail(`the echo differs from the upload near byte ${received}`);
        received += part.length;
      }
    });
    res.on("error", (error) => fail(`the echo response failed: ${error.message}`));
    res.on("end", () => resolve(received));
  });
});

for (let sent = 0; sent < total; ) {
  const length = Math.min(CHUNK, total - sent);
  const more = req.write(payloadAt(sent, length));
  sent += length;
  if (!more) await once(req, "drain");
}
req.end();
const received = await echoed;
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
clearTimeout(timer);
if (received !== total) fail(`the echo has ${received} of ${total} bytes`);
console.log(`BENCH_JSON ${JSON.stringify({ bytes: total, seconds, mibps: total / 2 ** 20 / seconds })}`);
