// Turns the results into Markdown: the targets with met/missed, one table per kind of
// figure (requests/s, MiB/s, RSS growth, fixed-rate latency) with each subject's
// targets beside its row, the scaling table, and the results section of bench/README.md.
import { readFileSync, writeFileSync } from "node:fs";
import { median } from "./stats.mjs";
import { describeTarget } from "./targets.mjs";

const int = (v) => (v === null || v === undefined ? "n/a" : Math.round(v).toLocaleString("en-US"));
const times = (v) => (v === null || v === undefined ? "n/a" : `${v.toFixed(2)}×`);
const fixed = (digits) => (v) => (v === null || v === undefined ? "n/a" : v.toFixed(digits));
const ms = fixed(2);
const mib = fixed(1);
/** A share of 0 to 1 as a whole percentage, or n/a. */
export const percent = (v) => (v === null || v === undefined ? "n/a" : `${Math.round(v * 100)} %`);

/** How busy the server's and the load generator's cores were (medians over the runs). */
const coresCell = ["cores busy: server / load", (s) => `${percent(s.serverCoreBusy)} / ${percent(s.loadCoreBusy)}`];

/** A target's verdict, saying when the load generator could not reach it. */
const verdictText = (t) =>
  `**${t.result}**${t.loadReach ? ` (the load generator saturated at ${times(t.loadReach)})` : ""}`;

/** The median over a server's runs of one field. */
const med = (s, pick) => median(s.runs.map(pick));

const ratioWithRange = (s) =>
  s.ratioRange.min === null
    ? times(s.ratio)
    : `${times(s.ratio)} (${s.ratioRange.min.toFixed(2)}–${s.ratioRange.max.toFixed(2)})`;

/** The columns each kind of figure is shown with, after "workload | server". */
const COLUMNS = {
  rps: [
    ["req/s (median)", (s) => int(s.value)],
    ["vs baseline (min–max)", ratioWithRange],
    ["p99 ms (median)", (s) => ms(s.p99Ms)],
    ["p99 vs baseline", (s) => times(s.p99Ratio)],
    coresCell,
    ["errors", (s) => String(s.errors)],
  ],
  mibps: [
    ["MiB/s echoed (median)", (s) => mib(s.value)],
    ["vs baseline (min–max)", ratioWithRange],
    coresCell,
    ["errors", (s) => String(s.errors)],
  ],
  rssGrowth: [
    ["RSS before, MiB", (s) => mib(med(s, (r) => r.rssBeforeMiB))],
    ["RSS with the connections, MiB", (s) => mib(med(s, (r) => r.rssAfterMiB))],
    ["growth, MiB (median)", (s) => mib(s.value)],
    ["KiB per connection", (s) => mib(med(s, (r) => r.perConnectionKiB))],
    ["vs baseline (min–max)", ratioWithRange],
    ["connections not held", (s) => String(s.errors)],
  ],
  p99: [
    ["offered req/s", (s) => int(med(s, (r) => r.offeredRps))],
    ["achieved req/s", (s) => int(med(s, (r) => r.rps))],
    ["p50 ms", (s) => ms(med(s, (r) => r.latencyMs.p50))],
    ["p99 ms (median)", (s) => ms(s.value)],
    ["max ms", (s) => ms(med(s, (r) => r.latencyMs.max))],
    ["p99 vs baseline (min–max)", ratioWithRange],
    ["errors", (s) => String(s.errors)],
  ],
};

const HEADINGS = {
  rps: "Throughput",
  mibps: "Streamed echo",
  rssGrowth: "Idle keep-alive connections",
  p99: "Latency at a fixed rate",
};

function targetCell(w, s) {
  return w.targets
    .filter((t) => t.subject === s.id)
    .map((t) => `${describeTarget(t)}: ${times(t.measured)}, ${verdictText(t)}`)
    .join("; ");
}

/** One table per kind of figure, in the order the workloads ran. */
export function loadTables(results) {
  const kinds = [...new Set(results.workloads.map((w) => w.metric))];
  return kinds.map((kind) => {
    const columns = COLUMNS[kind];
    const lines = [
      `| workload | server | ${columns.map(([h]) => h).join(" | ")} | target |`,
      `|---|---|${columns.map(() => "---:").join("|")}|---|`,
    ];
    for (const w of results.workloads.filter((x) => x.metric === kind)) {
      for (const s of w.servers) {
        const name = s.id === w.baseline ? `**${s.label}** (baseline)` : s.label;
        lines.push(
          `| ${w.title} | ${name} | ${columns.map(([, cell]) => cell(s)).join(" | ")} | ${targetCell(w, s)} |`,
        );
      }
    }
    return { heading: HEADINGS[kind] ?? kind, markdown: lines.join("\n") };
  });
}

/** Every target of the run with its measured value and whether it was met. */
export function targetsTable(results) {
  const lines = ["| workload | target | measured | result |", "|---|---|---:|---|"];
  for (const w of results.workloads) {
    for (const t of w.targets) {
      const subject = w.servers.find((s) => s.id === t.subject)?.label ?? t.subject;
      lines.push(`| ${w.short} | ${subject} ${describeTarget(t)} | ${times(t.measured)} | ${verdictText(t)} |`);
    }
  }
  const c = results.crossingTarget;
  if (c) {
    lines.push(
      `| N-API crossing, ${c.batch} requests per wake | JS thread ≤ ${c.maxNs} ns/request | ${int(c.measured)} ns | **${c.result}** |`,
    );
  }
  return lines.length > 2 ? lines.join("\n") : "";
}

/** Requests/s against the `workers` option. */
export function scalingTable(scaling) {
  const lines = [`| workers | req/s (median) | vs 1 worker | p99 ms (median) | errors |`, "|---:|---:|---:|---:|---:|"];
  for (const row of scaling.rows) {
    lines.push(`| ${row.workers} | ${int(row.rps)} | ${times(row.speedup)} | ${ms(row.p99Ms)} | ${row.errors} |`);
  }
  const node = scaling.nodeHttp;
  const one = scaling.rows.find((r) => r.workers === 1)?.rps;
  if (node) {
    lines.push(
      `| node:http, one process | ${int(node.rps)} | ${times(one ? node.rps / one : null)} | ${ms(node.p99Ms)} | ${node.errors} |`,
    );
  }
  return lines.join("\n");
}

/** The whole report, as printed and as recorded. */
export function reportMarkdown(results, crossingMarkdown, level = "###") {
  const parts = [];
  const targets = targetsTable(results);
  if (targets) parts.push(`${level} Targets`, "", targets, "");
  if (crossingMarkdown) parts.push(`${level} N-API crossing (tinybench)`, "", crossingMarkdown, "");
  for (const table of loadTables(results)) parts.push(`${level} ${table.heading}`, "", table.markdown, "");
  if (results.scaling) {
    parts.push(`${level} Scaling (${results.scaling.title})`, "", scalingTable(results.scaling), "");
  }
  return parts;
}

export function machineSection(results) {
  const m = results.machine;
  const c = results.config;
  return [
    `- Date: ${m.date}`,
    `- Machine: ${m.nproc} cores (${m.cpu}), ${m.ramGiB} GiB RAM, ${m.kernel}; 1-minute load before the run ${m.loadBefore}`,
    `- Versions: Node ${m.node}, ${m.rustc}, ${m.wrk.split(" [")[0]}, ${m.h2load}`,
    `- Commit: ${m.commit}${m.dirtyTree ? " (with uncommitted changes in the work tree)" : ""}`,
    `- Pinning: ${results.pinning.pinned ? "each server on core 0 (`taskset -c 0`), the load generator on core 1 (`taskset -c 1`)" : results.pinning.notice}`,
    `- Load: wrk and h2load with 1 thread, ${c.connections} HTTP/1.1 connections; ${c.warmup} s warm-up, then ${c.runs} runs of ${c.duration} s per server and workload, servers alternating; echo of ${mib(c.echoBytes / 2 ** 20)} MiB; ${int(c.idleConnections)} idle connections`,
  ].join("\n");
}

/** Replaces the text between the results markers of bench/README.md. */
export function recordInReadme(readmePath, results, crossingMarkdown) {
  const start = "<!-- results:start -->";
  const end = "<!-- results:end -->";
  const text = readFileSync(readmePath, "utf8");
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from < 0 || to < from) throw new Error(`${readmePath} has no ${start} … ${end} section`);
  const parts = [
    start,
    "",
    "_Written by `npm run bench -- --record`; do not edit by hand._",
    "",
    machineSection(results),
    "",
    ...reportMarkdown(results, crossingMarkdown),
  ];
  if (results.workloads.length > 0) {
    parts.push("![Each workload's figure relative to its baseline](results/latest.svg)", "");
  }
  if (results.notices.length > 0) parts.push("Notices:", "", ...results.notices.map((n) => `- ${n}`), "");
  parts.push(end);
  writeFileSync(readmePath, text.slice(0, from) + parts.join("\n") + text.slice(to + end.length));
}
