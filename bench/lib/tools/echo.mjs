// The streamed echo: crates/peregrine-core/examples/echo_client.rs, pinned like the load
// generators, POSTs the payload to /echo and reads it back; the figure is MiB/s of
// payload echoed. The client is native: a Node.js one saturates its core below the
// servers it measures.
import { buildExample } from "../cargo.mjs";
import { runForJson } from "../process.mjs";

let client;

export async function runEcho({ root, pin, base, bytes }) {
  if (client === undefined) {
    const { binary, problem } = buildExample(root, "echo_client");
    if (problem?.includes("no binary")) throw new Error(problem);
    if (problem) console.warn(problem);
    client = binary;
  }
  // A slow server still finishes 1 GiB within minutes; a stuck one is stopped.
  const timeoutMs = 300_000;
  const argv = [...pin, client, `--url=${base}/echo`, `--bytes=${bytes}`, `--timeout-ms=${timeoutMs}`];
  const { json: raw, cpu } = await runForJson(argv, { timeoutMs: timeoutMs + 10_000 });
  return { mibps: raw.mibps, seconds: raw.seconds, bytes: raw.bytes, errors: 0, cpu };
}
