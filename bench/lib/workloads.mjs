// The workloads, each one load-generator invocation against every server. New kinds
// (h2load for h2c, TLS, fixed-rate latency) add an entry with their own `tool`.
import { spawn } from "node:child_process";
import path from "node:path";

export const WORKLOADS = [
  {
    id: "plaintext",
    title: "HTTP/1.1 plaintext, keep-alive (GET /)",
    short: "plaintext (GET /)",
    tool: "wrk",
    path: "/",
    script: "report.lua",
    scriptArgs: [],
    baseline: "node-http",
  },
  {
    id: "json",
    title: "HTTP/1.1 JSON, keep-alive (GET /json)",
    short: "JSON (GET /json)",
    tool: "wrk",
    path: "/json",
    script: "report.lua",
    scriptArgs: [],
    baseline: "node-http",
  },
  {
    id: "pipelined",
    title: "HTTP/1.1 pipelined 16 deep (GET /)",
    short: "pipelined ×16 (GET /)",
    tool: "wrk",
    path: "/",
    script: "pipeline.lua",
    scriptArgs: ["16", "/"],
    baseline: "node-http",
  },
];

/**
 * Runs wrk once (pinned when `pin` is a taskset prefix). Resolves with requests/s,
 * latency in milliseconds (p99 is null when wrk cannot compute it, as with
 * pipelining) and error counts.
 */
export function runWrk({ root, pin, base, workload, connections, seconds }) {
  const argv = [
    ...pin,
    "wrk",
    "-t1",
    `-c${connections}`,
    `-d${seconds}s`,
    "--timeout",
    "5s",
    "-s",
    path.join(root, "bench/wrk", workload.script),
    `${base}${workload.path}`,
  ];
  if (workload.scriptArgs.length > 0) argv.push("--", ...workload.scriptArgs);
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c) => {
      out += c;
    });
    child.stderr.on("data", (c) => {
      out += c;
    });
    child.once("error", (error) =>
      reject(error.code === "ENOENT" ? new Error("wrk was not found: install the Debian package wrk") : error),
    );
    const timer = setTimeout(() => child.kill("SIGKILL"), (seconds + 30) * 1000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      const line = out.split("\n").find((l) => l.startsWith("BENCH_JSON "));
      if (code !== 0 || line === undefined) {
        reject(new Error(`wrk failed (exit ${code}): ${argv.join(" ")}\n${out}`));
        return;
      }
      const raw = JSON.parse(line.slice("BENCH_JSON ".length));
      const errors = Object.values(raw.errors).reduce((a, b) => a + b, 0);
      const ms = (us) => (us > 0 ? us / 1000 : null);
      resolve({
        rps: raw.requests / (raw.durationUs / 1e6),
        requests: raw.requests,
        latencyMs: { mean: ms(raw.latencyUs.mean), p50: ms(raw.latencyUs.p50), p99: ms(raw.latencyUs.p99) },
        errors,
        errorDetail: raw.errors,
      });
    });
  });
}
