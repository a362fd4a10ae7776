// The streamed echo: bench/clients/echo.mjs, pinned like the load generators, POSTs
// the payload to /echo and reads it back; the figure is MiB/s of payload echoed.
import path from "node:path";
import { runForJson } from "../process.mjs";

export async function runEcho({ root, pin, base, bytes }) {
  // A slow server still finishes 1 GiB within minutes; a stuck one is stopped.
  const timeoutMs = 300_000;
  const argv = [
    ...pin,
    process.execPath,
    path.join(root, "bench/clients/echo.mjs"),
    `--url=${base}/echo`,
    `--bytes=${bytes}`,
    `--timeout-ms=${timeoutMs}`,
  ];
  const raw = await runForJson(argv, { timeoutMs: timeoutMs + 10_000 });
  return { mibps: raw.mibps, seconds: raw.seconds, bytes: raw.bytes, errors: 0 };
}
