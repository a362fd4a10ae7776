// `npm run bench`: the N-API crossing micro-benchmark, then the load harness.
// Flags and environment variables: `npm run bench -- --help`. See bench/README.md.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { crossingTable } from "./crossing.mjs";
import { readConfig, usage } from "./lib/config.mjs";
import { describeMachine, pinning } from "./lib/machine.mjs";
import { loadTable, ratioChart, recordInReadme } from "./lib/report.mjs";
import { checkRoutes, SERVERS, startServer } from "./lib/servers.mjs";
import { median, minMax } from "./lib/stats.mjs";
import { runWrk, WORKLOADS } from "./lib/workloads.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const log = (message) => process.stderr.write(`${message}\n`);

function select(all, ids, what) {
  if (ids.length === 0) return all;
  const unknown = ids.filter((id) => !all.some((x) => x.id === id));
  if (unknown.length > 0) {
    throw new Error(`unknown ${what} ${unknown.join(", ")}; known: ${all.map((x) => x.id).join(", ")}`);
  }
  return all.filter((x) => ids.includes(x.id));
}

/** Runs bench/crossing.mjs in a child process, pinned like the servers. */
function runCrossing(config, pin) {
  return new Promise((resolve, reject) => {
    const argv = [
      ...pin.server,
      process.execPath,
      path.join(here, "crossing.mjs"),
      "--json",
      `--time=${config.crossingTime}`,
    ];
    const child = spawn(argv[0], argv.slice(1), { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c) => {
      out += c;
    });
    child.stderr.on("data", (c) => {
      out += c;
    });
    child.once("error", reject);
    child.once("exit", (code) => {
      const line = out.split("\n").find((l) => l.startsWith("BENCH_JSON "));
      if (code === 0 && line) resolve(JSON.parse(line.slice("BENCH_JSON ".length)));
      else reject(new Error(`bench/crossing.mjs failed (exit ${code}):\n${out}`));
    });
  });
}

function summarize(workload, servers, measured) {
  const base = measured.get(workload.baseline);
  const baseRps = base ? median(base.map((r) => r.rps)) : null;
  const baseP99 = base ? median(base.map((r) => r.latencyMs.p99)) : null;
  return servers.map((server) => {
    const runs = measured.get(server.id);
    const rps = median(runs.map((r) => r.rps));
    const p99Ms = median(runs.map((r) => r.latencyMs.p99));
    // Each run is paired with the baseline's run of the same round, for the error bars.
    const perRun = base ? runs.map((r, i) => (base[i] ? r.rps / base[i].rps : null)) : [];
    return {
      id: server.id,
      label: server.label,
      role: server.role,
      rps,
      p99Ms,
      ratio: baseRps ? rps / baseRps : null,
      ratioRange: minMax(perRun),
      p99Ratio: baseP99 && p99Ms !== null ? p99Ms / baseP99 : null,
      errors: runs.reduce((sum, r) => sum + r.errors, 0),
      runs,
    };
  });
}

async function loadHarness(config, pin, notices) {
  const servers = select(SERVERS, config.servers, "server");
  const workloads = select(WORKLOADS, config.workloads, "workload");
  if (spawnSync("wrk", ["--version"]).error) {
    throw new Error("wrk was not found: install the Debian package wrk (apt-get install wrk)");
  }
  const started = [];
  const stopAll = () => Promise.all(started.map((s) => s.stop()));
  process.once("SIGINT", () => stopAll().then(() => process.exit(130)));
  try {
    for (const server of servers) {
      const problem = server.prepare?.(root);
      if (problem) {
        notices.push(`${server.label}: ${problem}`);
        if (problem.includes("no binary") || problem.includes("missing")) continue;
      }
      try {
        log(`starting ${server.label}`);
        const handle = await startServer(server, root, pin.server);
        started.push(handle);
        const problems = await checkRoutes(handle.base);
        if (problems.length > 0) {
          notices.push(`${server.label} was left out: it does not serve the hello routes (${problems.join("; ")}).`);
          await handle.stop();
          started.pop();
        }
      } catch (error) {
        notices.push(`${server.label} was left out: ${error.message.split("\n")[0]}`);
      }
    }
    const running = started.map((s) => s.server);
    const results = [];
    for (const workload of workloads) {
      if (!running.some((s) => s.id === workload.baseline)) {
        notices.push(`${workload.title}: the baseline ${workload.baseline} is not running, so no ratios.`);
      }
      const measured = new Map(running.map((s) => [s.id, []]));
      const wrk = (handle, seconds) =>
        runWrk({ root, pin: pin.load, base: handle.base, workload, connections: config.connections, seconds });
      if (config.warmup > 0) {
        for (const handle of started) {
          log(`${workload.id}: warming up ${handle.server.label}`);
          await wrk(handle, config.warmup);
        }
      }
      for (let run = 0; run < config.runs; run++) {
        // Rotate the order every round, so that no server always goes first.
        const order = started.map((_, i) => started[(i + run) % started.length]);
        for (const handle of order) {
          const result = await wrk(handle, config.duration);
          measured.get(handle.server.id).push(result);
          log(
            `${workload.id} run ${run + 1}/${config.runs}: ${handle.server.label} ${Math.round(result.rps)} req/s` +
              (result.errors > 0 ? ` (${result.errors} errors)` : ""),
          );
        }
      }
      results.push({
        id: workload.id,
        title: workload.title,
        short: workload.short,
        tool: workload.tool,
        baseline: workload.baseline,
        servers: summarize(workload, running, measured),
      });
    }
    return results;
  } finally {
    await stopAll();
  }
}

async function main() {
  const config = readConfig();
  if (config.help) {
    console.log(usage());
    return;
  }
  const machine = describeMachine(root);
  const pin = pinning();
  const notices = [];
  if (machine.loadBefore > 0.5) {
    notices.push(`The machine was busy before the run (1-minute load ${machine.loadBefore}): figures may be noisy.`);
  }
  if (pin.notice) {
    notices.push(pin.notice);
    log(`NOTICE: ${pin.notice}`);
  }

  let crossing = null;
  if (!config.skipCrossing) {
    log("N-API crossing micro-benchmark (tinybench)");
    try {
      crossing = await runCrossing(config, pin);
    } catch (error) {
      notices.push(`The crossing micro-benchmark failed: ${error.message.split("\n")[0]}`);
      log(error.message);
    }
  }

  const workloads = config.skipLoad ? [] : await loadHarness(config, pin, notices);

  const results = {
    machine,
    pinning: { pinned: pin.pinned, notice: pin.notice ?? null },
    config,
    crossing,
    workloads,
    notices,
  };
  const crossingMarkdown = crossing ? crossingTable(crossing) : "";
  if (crossing) console.log(`## N-API crossing (ns per request, target ≤ 250 amortized)\n\n${crossingMarkdown}\n`);
  if (workloads.length > 0) console.log(`## Load\n\n${loadTable(results)}\n`);
  for (const notice of notices) console.log(`NOTICE: ${notice}`);

  const out = path.join(here, "results");
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, "latest.json"), `${JSON.stringify(results, null, 2)}\n`);
  if (workloads.length > 0) writeFileSync(path.join(out, "latest.svg"), ratioChart(results));
  log(`wrote ${path.relative(root, out)}/latest.json${workloads.length > 0 ? " and latest.svg" : ""}`);
  if (config.record) {
    recordInReadme(path.join(here, "README.md"), results, crossingMarkdown);
    log("updated the results section of bench/README.md");
  }
}

main().catch((error) => {
  console.error(error.message);
  process.exitCode = 1;
});
