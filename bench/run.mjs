// `npm run bench`: the N-API crossing micro-benchmark, then the load workloads (or,
// with --scaling, requests/s against the `workers` option). Flags and environment
// variables: `npm run bench -- --help`. See bench/README.md.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { crossingTable } from "./crossing.mjs";
import { makeCertificate } from "./lib/certs.mjs";
import { ratioChart } from "./lib/chart.mjs";
import { checkRoutes } from "./lib/check.mjs";
import { readConfig, usage } from "./lib/config.mjs";
import { saturatedLoad, withCoreUse } from "./lib/cores.mjs";
import { describeMachine, pinning } from "./lib/machine.mjs";
import { runForJson } from "./lib/process.mjs";
import { percent, recordInReadme, reportMarkdown } from "./lib/report.mjs";
import { runScaling } from "./lib/scaling.mjs";
import { overTls, SERVERS, startServer } from "./lib/servers.mjs";
import { median, minMax } from "./lib/stats.mjs";
import { crossingTarget, evaluateTargets } from "./lib/targets.mjs";
import { WORKLOADS } from "./lib/workloads.mjs";

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
  const argv = [
    ...pin.server,
    process.execPath,
    path.join(here, "crossing.mjs"),
    "--json",
    `--time=${config.crossingTime}`,
  ];
  return runForJson(argv, { cwd: root, timeoutMs: 600_000 }).then(({ json }) => json);
}

/** Medians and ratios to the baseline of one workload's runs, one row per server. */
function summarize(workload, servers, measured) {
  const value = workload.metric.value;
  const base = measured.get(workload.baseline);
  const baseValue = base ? median(base.map(value)) : null;
  const baseP99 = base ? median(base.map((r) => r.latencyMs?.p99)) : null;
  return servers.map((server) => {
    const runs = measured.get(server.id);
    const v = median(runs.map(value));
    const p99Ms = median(runs.map((r) => r.latencyMs?.p99));
    // Each run is paired with the baseline's run of the same round, for the error bars.
    const perRun = base ? runs.map((r, i) => (base[i] && value(base[i]) ? value(r) / value(base[i]) : null)) : [];
    return {
      id: server.id,
      label: server.label,
      role: server.role,
      value: v,
      rps: median(runs.map((r) => r.rps)),
      p99Ms,
      ratio: baseValue && v !== null ? v / baseValue : null,
      ratioRange: minMax(perRun),
      p99Ratio: baseP99 && p99Ms !== null ? p99Ms / baseP99 : null,
      serverCoreBusy: median(runs.map((r) => r.serverCoreBusy)),
      loadCoreBusy: median(runs.map((r) => r.loadCoreBusy)),
      errors: runs.reduce((sum, r) => sum + r.errors, 0),
      runs,
    };
  });
}

/** Says which figure of a workload the load generator limited, and how far it reached. */
function loadNotice(workload, { server, ratio }) {
  const reach = ratio === null ? "" : ` (${ratio.toFixed(2)}× ${workload.baseline})`;
  return (
    `${workload.id}: the load generator kept its core ${percent(server.loadCoreBusy)} busy against ${server.label}, ` +
    `at ${Math.round(server.value).toLocaleString("en-US")} ${workload.metric.unit}${reach}: ` +
    "that figure is the load generator's limit on this machine, and no server can be measured beyond it."
  );
}

/** Starts servers for workloads and stops them; one instance per (server, workload). */
class Servers {
  #pin;
  #notices;
  #prepared = new Map();
  #live = new Set();
  #tls;

  constructor(pin, notices) {
    this.#pin = pin;
    this.#notices = notices;
  }

  /** Builds what a server needs, once per run; false when it cannot be measured. */
  #prepare(server) {
    if (!this.#prepared.has(server.id)) {
      const problem = server.prepare?.(root);
      if (problem) this.#notices.push(`${server.label}: ${problem}`);
      this.#prepared.set(server.id, !(problem && (problem.includes("no binary") || problem.includes("missing"))));
    }
    return this.#prepared.get(server.id);
  }

  #certificate() {
    this.#tls ??= makeCertificate();
    return this.#tls;
  }

  /** Starts `server` for `workload` and checks its routes; null (with a notice) when it fails. */
  async start(server, workload) {
    if (!this.#prepare(server)) return null;
    try {
      const handle = await startServer(server, root, this.#pin.server, {
        protocol: workload.protocol,
        tls: overTls(workload.protocol) ? this.#certificate() : undefined,
        env: workload.serverEnv,
      });
      this.#live.add(handle);
      const problems = await checkRoutes(handle.base, workload.protocol).catch((error) => [error.message]);
      if (problems.length === 0) return handle;
      this.#notices.push(`${workload.id}: ${server.label} was left out: ${problems.join("; ")}.`);
      await this.stop(handle);
    } catch (error) {
      this.#notices.push(`${workload.id}: ${server.label} was left out: ${error.message.split("\n")[0]}`);
    }
    return null;
  }

  async stop(handle) {
    this.#live.delete(handle);
    await handle.stop();
  }

  async stopAll() {
    await Promise.all([...this.#live].map((h) => this.stop(h)));
    this.#tls?.remove();
    this.#tls = undefined;
  }
}

/**
 * The rate of a fixed-rate workload: a fraction of a server's figure in an earlier
 * workload of this run, or, when that did not run, of one run measured now.
 */
async function rateFor(workload, handles, results, ctx) {
  const { workload: fromId, server: serverId, fraction } = workload.rateFrom;
  const earlier = results.find((r) => r.id === fromId)?.servers.find((s) => s.id === serverId)?.value;
  if (earlier) return earlier * fraction;
  const from = WORKLOADS.find((w) => w.id === fromId);
  const handle = handles.find((h) => h.server.id === serverId);
  if (from === undefined || handle === undefined) return null;
  log(`${workload.id}: measuring ${handle.server.label}'s ${fromId} peak first`);
  const run = await from.measure({ ...ctx, handle, workload: from, seconds: ctx.config.duration });
  return from.metric.value(run) * fraction;
}

async function runWorkload(workload, candidates, servers, results, ctx, notices) {
  const { config } = ctx;
  const handles = [];
  for (const server of candidates) {
    log(`${workload.id}: starting ${server.label}`);
    const handle = await servers.start(server, workload);
    if (handle) handles.push(handle);
  }
  try {
    if (!handles.some((h) => h.server.id === workload.baseline)) {
      notices.push(`${workload.title}: the baseline ${workload.baseline} is not running, so no ratios.`);
    }
    if (handles.length === 0) return null;
    let rate;
    if (workload.rateFrom) {
      rate = await rateFor(workload, handles, results, ctx);
      if (!rate) {
        notices.push(`${workload.title}: no ${workload.rateFrom.server} figure to set the rate from; skipped.`);
        return null;
      }
      log(`${workload.id}: ${Math.round(rate)} req/s offered to every server`);
    }
    const measure = (handle, seconds, warmingUp = false) =>
      workload.measure({ ...ctx, handle, workload, seconds, rate, warmingUp });
    if (config.warmup > 0 && workload.warmup !== false) {
      for (const handle of handles) {
        log(`${workload.id}: warming up ${handle.server.label}`);
        await measure(handle, config.warmup, true).catch((error) =>
          log(`${workload.id}: warm-up of ${handle.server.label} failed: ${error.message}`),
        );
      }
    }
    const measured = new Map(handles.map((h) => [h.server.id, []]));
    const failed = new Set();
    for (let run = 0; run < config.runs; run++) {
      // Rotate the order every round, so that no server always goes first.
      for (let i = 0; i < handles.length; i++) {
        const index = (i + run) % handles.length;
        if (failed.has(handles[index].server.id)) continue;
        if (workload.freshServerPerRun && run > 0) {
          const { server } = handles[index];
          await servers.stop(handles[index]);
          const fresh = await servers.start(server, workload);
          if (fresh === null) {
            failed.add(server.id);
            continue;
          }
          handles[index] = fresh;
        }
        const handle = handles[index];
        try {
          const result = await withCoreUse(ctx.pinning, () => measure(handle, config.duration));
          measured.get(handle.server.id).push(result);
          const figure = workload.metric.value(result);
          log(
            `${workload.id} run ${run + 1}/${config.runs}: ${handle.server.label} ${figure === null ? "n/a" : figure.toFixed(2)} ${workload.metric.unit}` +
              (result.loadCoreBusy === null
                ? ""
                : `, cores busy: server ${percent(result.serverCoreBusy)}, load ${percent(result.loadCoreBusy)}`) +
              (result.errors > 0 ? ` (${result.errors} errors)` : ""),
          );
        } catch (error) {
          notices.push(`${workload.id}: ${handle.server.label} was left out: ${error.message.split("\n")[0]}`);
          failed.add(handle.server.id);
        }
      }
    }
    const running = handles.map((h) => h.server).filter((s) => !failed.has(s.id));
    const summaries = summarize(workload, running, measured);
    const saturated = saturatedLoad(workload, summaries);
    if (saturated) notices.push(loadNotice(workload, saturated));
    return {
      id: workload.id,
      title: workload.title,
      short: workload.short,
      protocol: workload.protocol,
      metric: workload.metric.name,
      unit: workload.metric.unit,
      better: workload.metric.better,
      baseline: workload.baseline,
      ...(rate === undefined ? {} : { offeredRps: rate }),
      servers: summaries,
      loadSaturatedAt: saturated ? { server: saturated.server.id, value: saturated.server.value } : null,
      targets: evaluateTargets(workload, summaries, saturated),
    };
  } finally {
    await Promise.all(handles.map((h) => servers.stop(h)));
  }
}

async function loadHarness(config, pin, notices) {
  const selected = select(SERVERS, config.servers, "server");
  const workloads = select(WORKLOADS, config.workloads, "workload");
  const servers = new Servers(pin, notices);
  process.once("SIGINT", () => servers.stopAll().then(() => process.exit(130)));
  const ctx = { root, pin: pin.load, pinning: pin, config };
  const results = [];
  try {
    for (const workload of workloads) {
      const candidates = selected.filter(
        (s) =>
          s.protocols.includes(workload.protocol) &&
          (workload.servers?.includes(s.id) ?? true) &&
          (s.workloads?.includes(workload.id) ?? true),
      );
      if (candidates.length === 0) {
        notices.push(`${workload.title}: none of the selected servers speaks ${workload.protocol}; skipped.`);
        continue;
      }
      const result = await runWorkload(workload, candidates, servers, results, ctx, notices);
      if (result) results.push(result);
    }
    return results;
  } finally {
    await servers.stopAll();
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
  if (!config.skipCrossing && !config.scaling) {
    log("N-API crossing micro-benchmark (tinybench)");
    try {
      crossing = await runCrossing(config, pin);
    } catch (error) {
      notices.push(`The crossing micro-benchmark failed: ${error.message.split("\n")[0]}`);
      log(error.message);
    }
  }

  const workloads = config.skipLoad || config.scaling ? [] : await loadHarness(config, pin, notices);
  const scaling = config.scaling ? await runScaling({ root, config, notices, log }) : null;

  const results = {
    machine,
    pinning: { pinned: pin.pinned, notice: pin.notice ?? null },
    config,
    crossing,
    crossingTarget: crossingTarget(crossing),
    workloads,
    scaling,
    notices,
  };
  const crossingMarkdown = crossing ? crossingTable(crossing) : "";
  console.log(reportMarkdown(results, crossingMarkdown, "##").join("\n"));
  for (const notice of notices) console.log(`NOTICE: ${notice}`);

  const out = path.join(here, "results");
  mkdirSync(out, { recursive: true });
  const name = config.scaling ? "scaling" : "latest";
  writeFileSync(path.join(out, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
  if (workloads.length > 0) writeFileSync(path.join(out, "latest.svg"), ratioChart(results));
  log(`wrote ${path.relative(root, out)}/${name}.json${workloads.length > 0 ? " and latest.svg" : ""}`);
  if (config.record && !config.scaling) {
    recordInReadme(path.join(here, "README.md"), results, crossingMarkdown);
    log("updated the results section of bench/README.md");
  }
}

main().catch((error) => {
  console.error(error.message);
  process.exitCode = 1;
});
