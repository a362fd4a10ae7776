// `npm run bench -- --scaling`: plaintext requests/s of the hello routes against
// WebApplication.create({ workers: N }) (bench/servers/peregrine.mjs reads WORKERS),
// each worker count in a fresh server, with node:http's single process as a reference.
import os from "node:os";
import path from "node:path";
import { checkRoutes } from "./check.mjs";
import { scalingPinning } from "./machine.mjs";
import { SERVERS, startServer } from "./servers.mjs";
import { median } from "./stats.mjs";
import { runWrk, WORKLOADS } from "./workloads.mjs";

/** The hello routes with `workers: N`; not in SERVERS, so no workload picks it. */
const workersServer = (n) => ({
  id: `peregrine-workers-${n}`,
  label: `peregrine (native), workers: ${n}`,
  role: "subject",
  protocols: ["http1"],
  command: (root, { port }) => ({
    cmd: process.execPath,
    args: [path.join(root, "bench/servers/peregrine.mjs")],
    env: { PEREGRINE_URLS: `http://127.0.0.1:${port}`, WORKERS: String(n) },
  }),
});

/** 1, 2, 4, … up to `cores`, and `cores` itself. */
function defaultCounts(cores) {
  const counts = [];
  for (let n = 1; n < cores; n *= 2) counts.push(n);
  counts.push(cores);
  return counts;
}

export async function runScaling({ root, config, notices, log }) {
  const pin = scalingPinning();
  if (pin.notice) notices.push(pin.notice);
  const counts = config.workers.length > 0 ? config.workers : defaultCounts(pin.serverCores);
  const plaintext = WORKLOADS.find((w) => w.id === "plaintext");
  const wrk = (handle, seconds) =>
    runWrk({
      root,
      pin: pin.load,
      base: handle.base,
      workload: { ...plaintext, script: "report.lua", scriptArgs: [] },
      connections: config.connections,
      seconds,
      threads: pin.loadThreads,
    });

  const measureServer = async (server) => {
    log(`scaling: starting ${server.label}`);
    let handle;
    try {
      handle = await startServer(server, root, pin.server, { protocol: "http1" });
      const problems = await checkRoutes(handle.base, "http1");
      if (problems.length > 0) throw new Error(problems.join("; "));
      if (config.warmup > 0) await wrk(handle, config.warmup);
      const runs = [];
      for (let run = 0; run < config.runs; run++) {
        const { cpu: _window, ...run } = await wrk(handle, config.duration);
        runs.push(run);
        log(`scaling run ${run + 1}/${config.runs}: ${server.label} ${Math.round(runs.at(-1).rps)} req/s`);
      }
      return {
        rps: median(runs.map((r) => r.rps)),
        p99Ms: median(runs.map((r) => r.latencyMs.p99)),
        errors: runs.reduce((sum, r) => sum + r.errors, 0),
        runs,
      };
    } catch (error) {
      notices.push(`scaling: ${server.label} was left out: ${error.message.split("\n")[0]}`);
      return null;
    } finally {
      await handle?.stop();
    }
  };

  const rows = [];
  for (const workers of counts) {
    const measured = await measureServer(workersServer(workers));
    if (measured) rows.push({ workers, ...measured });
  }
  const one = rows.find((r) => r.workers === 1)?.rps;
  for (const row of rows) row.speedup = one ? row.rps / one : null;
  const nodeHttp = await measureServer(SERVERS.find((s) => s.id === "node-http"));
  return {
    title: `plaintext GET /, server on ${pin.serverCores} of ${os.availableParallelism()} cores`,
    serverCores: pin.serverCores,
    rows,
    nodeHttp,
  };
}
