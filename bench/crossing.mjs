// The N-API crossing micro-benchmark (tinybench): nanoseconds per request to go from
// the core's bridge into JS and back to the core with a response.
//
// Each iteration injects N synthetic requests into a bridge
// (crates/peregrine-node/src/bench.rs), where hyper's requests enter. The requests are
// built before each iteration (tinybench's beforeEach, not timed). Per N:
// - "crossing, server only": a NativeServer whose application answers from the
//   features (no HttpContext, routing or middleware): one wake of the JS thread,
//   drain() and the tape, the exchange, the response batch and respondBatch(). The
//   iteration ends when the last response has been handed to the core (after the
//   setImmediate that sends the turn's responses); the core answers them on its own
//   threads (crates/peregrine-node answerer.rs), and no connection task is woken per
//   response. "Of which injection" is the time injectRequests itself took: hyper's
//   side of the bridge (queuing each request, encoded as the tape), which a real
//   server runs on an I/O thread. "JS thread" is the JS thread's CPU time over the
//   iteration less its CPU time in injection (CLOCK_THREAD_CPUTIME_ID; wall time where
//   there is no such clock): pinned to one core, the core's threads answering the
//   responses share it, and wall time would count their work too. It is the figure
//   the ≤ 250 ns target is about.
// - "with the app pipeline": the same through a WebApplication (HttpContext, routing,
//   the endpoint's result written after the pipeline).
// - "round trip": the pipeline again, but a task on the core's runtime awaits the N
//   responses, as hyper's connection tasks do, and signals JS through a threadsafe
//   function; it adds the cross-thread wake-ups of the response path.
//
//     node bench/crossing.mjs [--json] [--time=MS] [--batches=1,64,256] [--modes=server,js,roundtrip]
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import {
  IHttpResponseBodyFeature,
  IHttpResponseFeature,
  IServerAddressesFeature as IServerAddressesKey,
  NativeServer,
  silentLogger,
  WebApplication,
} from "peregrine";
import { Bench } from "tinybench";

const { SyntheticRequests, threadCpuTime: nativeThreadCpuTime } = createRequire(import.meta.url)("@peregrine/native");
/** The JS thread's CPU clock (ns), where the platform has one. */
const cpuClock = typeof nativeThreadCpuTime === "function" && nativeThreadCpuTime() !== null;
const threadCpuTime = cpuClock ? nativeThreadCpuTime : () => 0;

/** Runs the crossing tasks; resolves with one row per batch size. */
export async function measureCrossing({
  timeMs = 1000,
  batches = [1, 64, 256],
  modes = ["server", "js", "roundtrip"],
} = {}) {
  if (typeof SyntheticRequests !== "function") {
    throw new Error("this build of @peregrine/native has no SyntheticRequests: run `npm run build:native`");
  }
  const app = WebApplication.create({ urls: ["http://127.0.0.1:0"], logger: silentLogger });
  let handled = 0;
  let target = -1;
  let reached = () => {};
  app.mapGet("/", () => {
    // The responses of a turn go to the core from a setImmediate queued after the
    // handlers ran (ResponseBatch); one queued from inside it runs after that flush.
    if (++handled === target) setImmediate(() => setImmediate(reached));
    return "Hello, World!";
  });
  await app.start();
  const native = app.server.handle;
  const host = new URL(app.urls[0]).host;

  // The server boundary alone: a NativeServer whose application answers from the
  // features, with no HttpContext, routing or middleware.
  const bare = new NativeServer({ logger: silentLogger });
  bare.features.get(IServerAddressesKey).addresses.push("http://127.0.0.1:0");
  await bare.start({
    createContext: (features) => features,
    processRequest(features) {
      features.get(IHttpResponseFeature).headers.set("content-type", "text/plain; charset=utf-8");
      void features.get(IHttpResponseBodyFeature).complete("Hello, World!");
      if (++handled === target) setImmediate(() => setImmediate(reached));
      return undefined;
    },
    disposeContext() {},
  });

  let injected = 0;
  let missing = 0;
  const bench = new Bench({ time: timeMs, warmupTime: Math.min(500, timeMs), iterations: 64 });
  /**
   * Per task: wall nanoseconds spent in injectRequests (hyper's side, on the JS thread
   * here), and the JS thread's CPU nanoseconds over the iterations and in injection.
   */
  const spentBy = new Map();
  function addJs(n, mode, handle) {
    const local = new SyntheticRequests(n, "/", host);
    const spent = { ns: 0, calls: 0, cpu: 0, injectionCpu: 0 };
    spentBy.set(`${mode}:${n}`, spent);
    bench.add(
      `${mode}:${n}`,
      () =>
        new Promise((resolve) => {
          const cpuStart = threadCpuTime();
          reached = () => {
            spent.cpu += threadCpuTime() - cpuStart;
            resolve();
          };
          target = handled + n;
          injected += n;
          const start = process.hrtime.bigint();
          handle.injectRequests(local);
          spent.ns += Number(process.hrtime.bigint() - start);
          spent.injectionCpu += threadCpuTime() - cpuStart;
          spent.calls++;
        }),
      {
        async: true,
        beforeEach: () => local.prepare(),
        afterEach: () => {
          missing += n - local.settle();
        },
      },
    );
  }
  function addRoundTrip(n) {
    let done = () => {};
    const roundTrip = new SyntheticRequests(n, "/", host, () => done());
    bench.add(
      `roundtrip:${n}`,
      () =>
        new Promise((resolve) => {
          done = resolve;
          injected += n;
          native.injectRequests(roundTrip);
        }),
      { async: true, beforeEach: () => roundTrip.prepare() },
    );
  }
  for (const n of batches) {
    if (modes.includes("server")) addJs(n, "server", bare.handle);
    if (modes.includes("js")) addJs(n, "js", native);
    if (modes.includes("roundtrip")) addRoundTrip(n);
  }
  // Every task warms up before the first is timed: injection is counted from then
  // on, over the same iterations as the latencies it is subtracted from.
  bench.addEventListener("start", () => {
    for (const spent of spentBy.values()) {
      spent.ns = 0;
      spent.calls = 0;
      spent.cpu = 0;
      spent.injectionCpu = 0;
    }
  });
  await bench.run();
  await app.stop();
  await bare.stop();
  if (handled !== injected || missing !== 0) {
    throw new Error(`${injected} requests were injected; the handler saw ${handled}, ${missing} got no response`);
  }

  const perRequest = (name, n) => {
    const latency = bench.getTask(name)?.result.latency;
    if (latency === undefined) return null;
    const spent = spentBy.get(name);
    const mean = (latency.mean * 1e6) / n;
    const measured = spent !== undefined && spent.calls > 0;
    const injectionMean = measured ? spent.ns / spent.calls / n : null;
    // What the JS thread spends: in a server, hyper's I/O threads do the injecting. Its
    // CPU time where the platform has a per-thread clock; wall time otherwise.
    let jsThreadMean = null;
    if (measured) {
      jsThreadMean = cpuClock ? (spent.cpu - spent.injectionCpu) / spent.calls / n : mean - injectionMean;
    }
    return {
      mean,
      p50: (latency.p50 * 1e6) / n,
      rme: latency.rme,
      samples: latency.samplesCount,
      injectionMean,
      jsThreadMean,
      jsThreadClock: cpuClock ? "cpu" : "wall",
    };
  };
  return batches.map((n) => ({
    batch: n,
    server: perRequest(`server:${n}`, n),
    js: perRequest(`js:${n}`, n),
    roundTrip: perRequest(`roundtrip:${n}`, n),
  }));
}

export function crossingTable(rows) {
  const f = (v) => Math.round(v).toLocaleString("en-US");
  const wall = rows.some(({ server }) => server?.jsThreadClock === "wall");
  const jsThreadColumn = wall ? "JS thread: wall time less injection (mean)" : "JS thread: CPU less injection (mean)";
  const lines = [
    `| requests per wake | crossing, server only: ns/request (mean) | of which injection | ${jsThreadColumn} | p50 | ± | with the app pipeline: ns/request (mean) | p50 | ± | round trip: ns/request (mean) | p50 | ± |`,
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  const cells = (r) => (r == null ? "– | – | –" : `${f(r.mean)} | ${f(r.p50)} | ${r.rme.toFixed(1)}%`);
  const injected = (r) => (r?.injectionMean == null ? "–" : f(r.injectionMean));
  const jsThread = (r) => (r?.jsThreadMean == null ? "–" : f(r.jsThreadMean));
  const serverCells = (r) =>
    r == null
      ? "– | – | – | – | –"
      : `${f(r.mean)} | ${injected(r)} | ${jsThread(r)} | ${f(r.p50)} | ${r.rme.toFixed(1)}%`;
  for (const { batch, server, js, roundTrip } of rows)
    lines.push(`| ${batch} | ${serverCells(server)} | ${cells(js)} | ${cells(roundTrip)} |`);
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      json: { type: "boolean" },
      time: { type: "string" },
      batches: { type: "string" },
      modes: { type: "string" },
    },
  });
  const rows = await measureCrossing({
    timeMs: Number(values.time ?? process.env.BENCH_CROSSING_TIME ?? 1000),
    batches: (values.batches ?? "1,64,256").split(",").map(Number),
    modes: (values.modes ?? "server,js,roundtrip").split(","),
  });
  if (values.json) console.log(`BENCH_JSON ${JSON.stringify(rows)}`);
  else console.log(crossingTable(rows));
}
