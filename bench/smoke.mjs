// `npm run bench:smoke`: a ~20 s regression guard, not part of `npm test`. Plaintext
// keep-alive GET / on the native server against node:http, pinned like the full
// harness; prints the requests/s ratio. `--fail-below=R` exits 1 when the ratio is
// below R.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { pinning } from "./lib/machine.mjs";
import { SERVERS, startServer } from "./lib/servers.mjs";
import { median } from "./lib/stats.mjs";
import { WORKLOADS } from "./lib/workloads.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({ options: { "fail-below": { type: "string" } } });
const failBelow = values["fail-below"] === undefined ? undefined : Number(values["fail-below"]);

const pin = pinning();
if (pin.notice) console.log(`NOTICE: ${pin.notice}`);
const workload = WORKLOADS.find((w) => w.id === "plaintext");
const servers = ["peregrine", "node-http"].map((id) => SERVERS.find((s) => s.id === id));
for (const server of servers) {
  const problem = server.prepare?.(root);
  if (problem) throw new Error(problem);
}

const handles = [];
try {
  for (const server of servers) handles.push(await startServer(server, root, pin.server));
  const wrk = (handle, seconds) =>
    workload.measure({ root, pin: pin.load, handle, workload, seconds, config: { connections: 64 } });
  for (const handle of handles) await wrk(handle, 2);
  const rps = new Map(handles.map((h) => [h.server.id, []]));
  for (let run = 0; run < 2; run++) {
    for (const handle of run % 2 === 0 ? handles : [...handles].reverse()) {
      rps.get(handle.server.id).push((await wrk(handle, 4)).rps);
    }
  }
  const native = median(rps.get("peregrine"));
  const node = median(rps.get("node-http"));
  const ratio = native / node;
  console.log(
    `plaintext GET /, 64 connections: peregrine ${Math.round(native)} req/s, node:http ${Math.round(node)} req/s, ratio ${ratio.toFixed(2)}× (target ≥ 3.0×)`,
  );
  if (failBelow !== undefined && ratio < failBelow) {
    console.log(`FAIL: the ratio is below ${failBelow}`);
    process.exitCode = 1;
  }
} finally {
  await Promise.all(handles.map((h) => h.stop()));
}
