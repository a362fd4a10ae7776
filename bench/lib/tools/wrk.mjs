// wrk: HTTP/1.1 (and HTTPS) throughput at a fixed number of connections. wrk's Lua
// hook (bench/wrk/report.lua) prints its results as one JSON line.
import path from "node:path";
import { runForJson } from "../process.mjs";

/**
 * Runs wrk once (pinned when `pin` is a taskset prefix). Resolves with requests/s,
 * latency in milliseconds (p99 is null when wrk cannot compute it, as with
 * pipelining) and error counts.
 */
export async function runWrk({ root, pin, base, workload, connections, seconds, threads = 1 }) {
  const argv = [
    ...pin,
    "wrk",
    `-t${threads}`,
    `-c${connections}`,
    `-d${seconds}s`,
    "--timeout",
    "5s",
    "-s",
    path.join(root, "bench/wrk", workload.script),
    `${base}${workload.path}`,
  ];
  if (workload.scriptArgs.length > 0) argv.push("--", ...workload.scriptArgs);
  const { json: raw, cpu } = await runForJson(argv, {
    timeoutMs: (seconds + 30) * 1000,
    missing: "install the Debian package wrk",
  });
  const errors = Object.values(raw.errors).reduce((a, b) => a + b, 0);
  const ms = (us) => (us > 0 ? us / 1000 : null);
  return {
    rps: raw.requests / (raw.durationUs / 1e6),
    requests: raw.requests,
    latencyMs: { mean: ms(raw.latencyUs.mean), p50: ms(raw.latencyUs.p50), p99: ms(raw.latencyUs.p99) },
    errors,
    errorDetail: raw.errors,
    cpu,
  };
}
