// Harness settings: command-line flags win over environment variables, which win over
// the defaults. The defaults keep a full `npm run bench` to about a quarter of an hour.
import { parseArgs } from "node:util";

const FLAGS = {
  duration: { type: "string", env: "BENCH_DURATION", default: "4", help: "seconds per measured run (wrk, h2load)" },
  runs: { type: "string", env: "BENCH_RUNS", default: "3", help: "measured runs per server and workload" },
  warmup: { type: "string", env: "BENCH_WARMUP", default: "2", help: "seconds of warm-up per server and workload" },
  connections: {
    type: "string",
    env: "BENCH_CONNECTIONS",
    default: "64",
    help: "HTTP/1.1 connections (wrk, and h2load at a fixed rate)",
  },
  servers: { type: "string", env: "BENCH_SERVERS", default: "", help: "comma-separated server ids (default: all)" },
  workloads: {
    type: "string",
    env: "BENCH_WORKLOADS",
    default: "",
    help: "comma-separated workload ids (default: all)",
  },
  workload: { type: "string", env: "", default: "", help: "the same as --workloads" },
  "echo-mib": { type: "string", env: "BENCH_ECHO_MIB", default: "1024", help: "MiB each echo run streams up and back" },
  "idle-connections": {
    type: "string",
    env: "BENCH_IDLE_CONNECTIONS",
    default: "10000",
    help: "connections the idle workload opens and holds",
  },
  scaling: {
    type: "boolean",
    env: "BENCH_SCALING",
    default: false,
    help: "instead of the workloads: plaintext req/s against the `workers` option",
  },
  workers: {
    type: "string",
    env: "BENCH_WORKERS",
    default: "",
    help: "worker counts the scaling mode measures (default: 1, 2, 4, … up to the server's cores)",
  },
  "crossing-time": {
    type: "string",
    env: "BENCH_CROSSING_TIME",
    default: "1000",
    help: "milliseconds per crossing task",
  },
  "skip-crossing": {
    type: "boolean",
    env: "BENCH_SKIP_CROSSING",
    default: false,
    help: "skip the N-API micro-benchmark",
  },
  "skip-load": { type: "boolean", env: "BENCH_SKIP_LOAD", default: false, help: "skip the load harness" },
  record: { type: "boolean", env: "BENCH_RECORD", default: false, help: "also write the results into bench/README.md" },
  help: { type: "boolean", env: "", default: false, help: "print this help" },
};

function positive(name, value) {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    throw new Error(`--${name} (or ${FLAGS[name].env}) must be a positive number, not ${JSON.stringify(value)}`);
  }
  return n;
}

/** Counts, and durations in seconds (wrk takes whole seconds). */
function whole(name, value, min) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(`--${name} (or ${FLAGS[name].env}) must be a whole number ≥ ${min}, not ${JSON.stringify(value)}`);
  }
  return n;
}

function list(value) {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

export function usage() {
  const lines = ["Usage: npm run bench -- [flags]", ""];
  for (const [name, flag] of Object.entries(FLAGS)) {
    const env = flag.env ? ` (${flag.env})` : "";
    const def = flag.type === "boolean" ? "" : ` [default ${flag.default}]`;
    lines.push(`  --${name}${flag.type === "string" ? "=VALUE" : ""}${env}: ${flag.help}${def}`);
  }
  return lines.join("\n");
}

export function readConfig(argv = process.argv.slice(2), env = process.env) {
  const options = Object.fromEntries(Object.entries(FLAGS).map(([name, { type }]) => [name, { type }]));
  const { values } = parseArgs({ args: argv, options, strict: true });
  const get = (name) => {
    const flag = FLAGS[name];
    if (values[name] !== undefined) return values[name];
    const fromEnv = flag.env ? env[flag.env] : undefined;
    if (fromEnv !== undefined && fromEnv !== "") return flag.type === "boolean" ? fromEnv !== "0" : fromEnv;
    return flag.default;
  };
  return {
    help: get("help"),
    duration: whole("duration", get("duration"), 1),
    runs: whole("runs", get("runs"), 1),
    warmup: whole("warmup", get("warmup"), 0),
    connections: whole("connections", get("connections"), 1),
    servers: list(get("servers")),
    workloads: [...list(get("workloads")), ...list(get("workload"))],
    echoBytes: whole("echo-mib", get("echo-mib"), 1) * 2 ** 20,
    idleConnections: whole("idle-connections", get("idle-connections"), 1),
    scaling: get("scaling"),
    workers: list(get("workers")).map((w) => {
      const n = Number(w);
      if (!Number.isInteger(n) || n < 1)
        throw new Error(`--workers (or BENCH_WORKERS) takes whole numbers ≥ 1, not ${JSON.stringify(w)}`);
      return n;
    }),
    crossingTime: positive("crossing-time", get("crossing-time")),
    skipCrossing: get("skip-crossing"),
    skipLoad: get("skip-load"),
    record: get("record"),
  };
}
