// The workloads. Each is measured against every selected server that speaks its
// `protocol` (bench/lib/servers.mjs), with servers started afresh for it. An entry has:
//   id, title, short (the chart's label), protocol, baseline (the server its ratios
//     are against),
//   metric: what one run yields and which way is better (METRICS below),
//   measure(ctx): one run against ctx.handle, resolving with the metric's fields and
//     `errors`; ctx has root, pin (the load generator's taskset prefix), handle,
//     seconds, config, and `rate` for workloads with `rateFrom`,
//   targets: issue targets, each a ratio of the subject's figure to `reference`'s
//     (default: the baseline) that must be ≥ `min` or ≤ `max`,
// and optionally servers (ids it is limited to), serverEnv (variables its servers
// get), warmup: false, freshServerPerRun: true, and rateFrom (the fixed-rate workloads:
// a fraction of a server's requests/s in another workload of the same run).
import { runEcho } from "./tools/echo.mjs";
import { runH2load } from "./tools/h2load.mjs";
import { runIdle } from "./tools/idle.mjs";
import { runWrk } from "./tools/wrk.mjs";

export { runWrk };

/** `value(run)` picks a run's figure; `better` says which way the ratio should go. */
export const METRICS = {
  rps: { name: "rps", value: (r) => r.rps, unit: "req/s", better: "higher" },
  mibps: { name: "mibps", value: (r) => r.mibps, unit: "MiB/s", better: "higher" },
  rssGrowth: { name: "rssGrowth", value: (r) => r.rssGrowthMiB, unit: "MiB of RSS growth", better: "lower" },
  p99: { name: "p99", value: (r) => r.latencyMs.p99, unit: "ms p99", better: "lower" },
};

const wrk =
  (script, scriptArgs = []) =>
  ({ root, pin, handle, workload, seconds, config }) =>
    runWrk({
      root,
      pin,
      base: handle.base,
      workload: { ...workload, script, scriptArgs },
      connections: config.connections,
      seconds,
    });

/** h2load's -c and -m for the HTTP/2 workloads, as issue 3 sets them. */
const H2_CLIENTS = 16;
const H2_STREAMS = 32;

const h2load =
  (expectProtocol) =>
  ({ pin, handle, workload, seconds }) =>
    runH2load({
      pin,
      url: `${handle.base}${workload.path}`,
      seconds,
      clients: H2_CLIENTS,
      streams: H2_STREAMS,
      expectProtocol,
    });

export const WORKLOADS = [
  {
    id: "plaintext",
    title: "HTTP/1.1 plaintext, keep-alive (GET /)",
    short: "plaintext (GET /)",
    protocol: "http1",
    path: "/",
    baseline: "node-http",
    metric: METRICS.rps,
    measure: wrk("report.lua"),
    targets: [{ min: 3.0 }, { min: 0.7, reference: "rust" }],
  },
  {
    id: "json",
    title: "HTTP/1.1 JSON, keep-alive (GET /json)",
    short: "JSON (GET /json)",
    protocol: "http1",
    path: "/json",
    baseline: "node-http",
    metric: METRICS.rps,
    measure: wrk("report.lua"),
    targets: [{ min: 2.5 }, { min: 0.7, reference: "rust" }],
  },
  {
    id: "pipelined",
    title: "HTTP/1.1 pipelined 16 deep (GET /)",
    short: "pipelined ×16 (GET /)",
    protocol: "http1",
    path: "/",
    baseline: "node-http",
    metric: METRICS.rps,
    measure: wrk("pipeline.lua", ["16", "/"]),
    targets: [{ min: 4.0 }],
  },
  {
    id: "h2c",
    title: `HTTP/2 cleartext (h2c), ${H2_CLIENTS} connections × ${H2_STREAMS} streams (GET /)`,
    short: "h2c (GET /)",
    protocol: "h2c",
    path: "/",
    baseline: "node-http2",
    metric: METRICS.rps,
    measure: h2load("h2c"),
    targets: [{ min: 5.0 }],
  },
  {
    id: "h2",
    title: `HTTP/2 over TLS 1.3, ${H2_CLIENTS} connections × ${H2_STREAMS} streams (GET /)`,
    short: "h2 + TLS (GET /)",
    protocol: "h2",
    path: "/",
    baseline: "node-http2-secure",
    metric: METRICS.rps,
    measure: h2load("h2"),
    targets: [],
  },
  {
    id: "https",
    title: "HTTPS (TLS 1.3, HTTP/1.1), keep-alive (GET /)",
    short: "HTTPS (GET /)",
    protocol: "https",
    path: "/",
    baseline: "node-https",
    metric: METRICS.rps,
    measure: wrk("report.lua"),
    targets: [{ min: 2.5 }],
  },
  {
    id: "echo",
    title: "POST /echo, 1 GiB streamed up and back (HTTP/1.1)",
    short: "echo 1 GiB (MiB/s)",
    protocol: "http1",
    path: "/echo",
    baseline: "node-http",
    metric: METRICS.mibps,
    // Peregrine refuses bodies over 30 MB by default (Kestrel's limit); an app that
    // takes 1 GiB uploads lifts it, and so does the Rust example with this variable.
    servers: ["peregrine", "rust", "node-http", "fastify", "hono", "express"],
    serverEnv: { MAX_REQUEST_BODY_SIZE: "none" },
    measure: ({ root, pin, handle, config, warmingUp }) =>
      runEcho({ root, pin, base: handle.base, bytes: warmingUp ? 64 * 2 ** 20 : config.echoBytes }),
    targets: [{ min: 1.5 }],
  },
  {
    id: "hosting",
    title: "Hosting models: in-process against behind `peregrine host` (HTTP/1.1 GET /)",
    short: "out-of-process (GET /)",
    protocol: "http1",
    path: "/",
    baseline: "peregrine",
    metric: METRICS.rps,
    servers: ["peregrine", "peregrine-host"],
    measure: wrk("report.lua"),
    targets: [],
  },
  {
    id: "idle",
    title: "10,000 idle keep-alive connections: server RSS growth",
    short: "idle conns (RSS, lower is better)",
    protocol: "http1",
    path: "/",
    baseline: "node-http",
    metric: METRICS.rssGrowth,
    servers: ["peregrine", "rust", "node-http"],
    // node:http closes idle connections after 5 s by default; the others hold them
    // for minutes (Peregrine: keepAliveTimeout 130 s). Measure them all held.
    serverEnv: { KEEP_ALIVE_TIMEOUT_MS: "300000" },
    warmup: false,
    // RSS rarely shrinks after connections close, so each run gets a new process.
    freshServerPerRun: true,
    measure: ({ root, pin, handle, config }) => runIdle({ root, pin, handle, connections: config.idleConnections }),
    targets: [{ max: 0.5 }],
  },
  {
    id: "latency",
    title: "HTTP/1.1 at a fixed rate, half of node:http's plaintext peak: latency (GET /)",
    short: "fixed rate (p99, lower is better)",
    protocol: "http1",
    path: "/",
    baseline: "node-http",
    metric: METRICS.p99,
    rateFrom: { workload: "plaintext", server: "node-http", fraction: 0.5 },
    measure: ({ pin, handle, workload, seconds, config, rate }) =>
      runH2load({
        pin,
        url: `${handle.base}${workload.path}`,
        seconds,
        clients: config.connections,
        h1: true,
        perClientRps: rate / config.connections,
        expectProtocol: "http/1.1",
      }).then((run) => ({ ...run, offeredRps: rate })),
    targets: [{ max: 1.0 }],
  },
];
