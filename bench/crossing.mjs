// The N-API crossing micro-benchmark (tinybench): nanoseconds per request to go from
// the core's bridge into the JS pipeline and back through respond().
//
// A WebApplication serves GET / on the native server. Each iteration injects N
// synthetic requests into its bridge (crates/peregrine-node/src/bench.rs), where
// hyper's requests enter, and ends when the core has received all N responses. The
// requests are built before each iteration (tinybench's beforeEach, not timed); the
// timed part is: queue N requests, one wake of the JS thread, drain() and the tape,
// the pipeline, respond() for each, and the completion signal back to JS.
//
//     node bench/crossing.mjs [--json] [--time=MS] [--batches=1,64,256]
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import { silentLogger, WebApplication } from "peregrine";
import { Bench } from "tinybench";

const { SyntheticRequests } = createRequire(import.meta.url)("@peregrine/native");

/** Runs the crossing tasks; resolves with one row per batch size. */
export async function measureCrossing({ timeMs = 1000, batches = [1, 64, 256] } = {}) {
  if (typeof SyntheticRequests !== "function") {
    throw new Error("this build of @peregrine/native has no SyntheticRequests: run `npm run build:native`");
  }
  const app = WebApplication.create({ urls: ["http://127.0.0.1:0"], logger: silentLogger });
  let handled = 0;
  app.mapGet("/", () => {
    handled++;
    return "Hello, World!";
  });
  await app.start();
  const native = app.server.handle;
  const host = new URL(app.urls[0]).host;

  let injected = 0;
  const bench = new Bench({ time: timeMs, warmupTime: Math.min(500, timeMs), iterations: 64 });
  for (const n of batches) {
    let done = () => {};
    const requests = new SyntheticRequests(n, "/", host, () => done());
    bench.add(
      String(n),
      () =>
        new Promise((resolve) => {
          done = resolve;
          injected += n;
          native.injectRequests(requests);
        }),
      { async: true, beforeEach: () => requests.prepare() },
    );
  }
  await bench.run();
  await app.stop();
  if (handled !== injected) {
    throw new Error(`the handler saw ${handled} requests, but ${injected} were injected`);
  }

  return bench.tasks.map((task) => {
    const n = Number(task.name);
    const { latency } = task.result;
    const ns = (ms) => (ms * 1e6) / n;
    return {
      batch: n,
      nsPerRequest: ns(latency.mean),
      nsPerRequestP50: ns(latency.p50),
      nsPerRequestP99: ns(latency.p99),
      rmePercent: latency.rme,
      samples: latency.samplesCount,
    };
  });
}

export function crossingTable(rows) {
  const lines = [
    "| requests per wake | ns/request (mean) | ns/request (p50) | ns/request (p99) | ± | samples |",
    "|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    const f = (v) => Math.round(v).toLocaleString("en-US");
    lines.push(
      `| ${r.batch} | ${f(r.nsPerRequest)} | ${f(r.nsPerRequestP50)} | ${f(r.nsPerRequestP99)} | ${r.rmePercent.toFixed(1)}% | ${r.samples} |`,
    );
  }
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { json: { type: "boolean" }, time: { type: "string" }, batches: { type: "string" } },
  });
  const rows = await measureCrossing({
    timeMs: Number(values.time ?? process.env.BENCH_CROSSING_TIME ?? 1000),
    batches: (values.batches ?? "1,64,256").split(",").map(Number),
  });
  if (values.json) console.log(`BENCH_JSON ${JSON.stringify(rows)}`);
  else console.log(crossingTable(rows));
}
