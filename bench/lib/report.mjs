// Turns the results into a Markdown table, an SVG bar chart of the ratios (drawn by
// hand: bars with min/max error bars), and the results section of bench/README.md.
import { readFileSync, writeFileSync } from "node:fs";

const int = (v) => (v === null ? "n/a" : Math.round(v).toLocaleString("en-US"));
const ratio = (v) => (v === null ? "n/a" : `${v.toFixed(2)}×`);
const ms = (v) => (v === null ? "n/a" : v.toFixed(2));

export function loadTable(results) {
  const lines = [
    "| workload | server | req/s (median) | vs baseline (min–max) | p99 ms (median) | p99 vs baseline | errors |",
    "|---|---|---:|---:|---:|---:|---:|",
  ];
  for (const w of results.workloads) {
    for (const s of w.servers) {
      const range = s.ratioRange.min === null ? "" : ` (${s.ratioRange.min.toFixed(2)}–${s.ratioRange.max.toFixed(2)})`;
      const name = s.id === w.baseline ? `**${s.label}** (baseline)` : s.label;
      lines.push(
        `| ${w.title} | ${name} | ${int(s.rps)} | ${ratio(s.ratio)}${range} | ${ms(s.p99Ms)} | ${ratio(s.p99Ratio)} | ${s.errors} |`,
      );
    }
  }
  return lines.join("\n");
}

const COLORS = ["#ea580c", "#7c3aed", "#6b7280", "#0d9488", "#2563eb", "#db2777", "#65a30d", "#0891b2"];

const xml = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Grouped bars: one group per workload, one bar per server, height = ratio to baseline. */
export function ratioChart(results) {
  const workloads = results.workloads;
  const serverIds = [...new Set(workloads.flatMap((w) => w.servers.map((s) => s.id)))];
  const labels = new Map(workloads.flatMap((w) => w.servers.map((s) => [s.id, s.label])));
  const color = new Map(serverIds.map((id, i) => [id, COLORS[i % COLORS.length]]));

  const top = Math.max(
    1,
    ...workloads.flatMap((w) => w.servers.map((s) => Math.max(s.ratio ?? 0, s.ratioRange.max ?? 0))),
  );
  const yMax = top <= 2 ? Math.ceil(top * 4) / 4 + 0.25 : Math.ceil(top + 0.5);
  const step = yMax <= 2.5 ? 0.25 : yMax <= 6 ? 0.5 : 1;

  const bar = 22;
  const gap = 4;
  const groupPad = 40;
  const left = 56;
  const groupWidth = serverIds.length * (bar + gap) - gap;
  const width = Math.max(760, left + workloads.length * (groupWidth + groupPad) + groupPad);
  // The legend wraps into as many rows as it needs.
  const legend = [];
  let lx = left;
  let row = 0;
  for (const id of serverIds) {
    const w = 16 + labels.get(id).length * 6.6 + 18;
    if (lx + w > width - 8 && lx > left) {
      lx = left;
      row++;
    }
    legend.push({ id, x: lx, y: 32 + row * 18 });
    lx += w;
  }
  const plotTop = 32 + (row + 1) * 18 + 20;
  const plotHeight = 300;
  const height = plotTop + plotHeight + 60;
  const y = (v) => plotTop + plotHeight - (v / yMax) * plotHeight;

  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(
    `<text x="${left}" y="20" font-size="14" font-weight="600">Requests/s relative to node:http (median of ${results.config.runs} runs; bars show min–max)</text>`,
  );
  for (const { id, x, y: ly } of legend) {
    out.push(`<rect x="${x}" y="${ly}" width="12" height="12" fill="${color.get(id)}"/>`);
    out.push(`<text x="${x + 16}" y="${ly + 10}">${xml(labels.get(id))}</text>`);
  }
  // Axis and grid.
  for (let v = 0; v <= yMax + 1e-9; v += step) {
    const yy = y(v).toFixed(1);
    out.push(`<line x1="${left}" x2="${width - 8}" y1="${yy}" y2="${yy}" stroke="#e5e7eb"/>`);
    out.push(`<text x="${left - 6}" y="${Number(yy) + 4}" text-anchor="end" fill="#374151">${v.toFixed(2)}×</text>`);
  }
  const one = y(1).toFixed(1);
  out.push(`<line x1="${left}" x2="${width - 8}" y1="${one}" y2="${one}" stroke="#111827" stroke-dasharray="4 3"/>`);
  // Bars.
  workloads.forEach((w, wi) => {
    const gx = left + groupPad + wi * (groupWidth + groupPad);
    w.servers.forEach((s) => {
      const i = serverIds.indexOf(s.id);
      const x = gx + i * (bar + gap);
      if (s.ratio === null) return;
      const yy = y(s.ratio);
      out.push(
        `<rect x="${x}" y="${yy.toFixed(1)}" width="${bar}" height="${(y(0) - yy).toFixed(1)}" fill="${color.get(s.id)}"><title>${xml(`${s.label}, ${w.title}: ${s.ratio.toFixed(2)}×`)}</title></rect>`,
      );
      if (s.ratioRange.min !== null && s.ratioRange.max - s.ratioRange.min > 1e-6) {
        const cx = x + bar / 2;
        const y1 = y(s.ratioRange.min).toFixed(1);
        const y2 = y(s.ratioRange.max).toFixed(1);
        out.push(`<line x1="${cx}" x2="${cx}" y1="${y1}" y2="${y2}" stroke="#111827" stroke-width="1.5"/>`);
        out.push(`<line x1="${cx - 5}" x2="${cx + 5}" y1="${y1}" y2="${y1}" stroke="#111827" stroke-width="1.5"/>`);
        out.push(`<line x1="${cx - 5}" x2="${cx + 5}" y1="${y2}" y2="${y2}" stroke="#111827" stroke-width="1.5"/>`);
      }
      const labelY = Math.min(yy, y(s.ratioRange.max ?? s.ratio)) - 4;
      out.push(
        `<text x="${x + bar / 2}" y="${labelY.toFixed(1)}" text-anchor="middle" font-size="10" fill="#111827">${s.ratio.toFixed(1)}</text>`,
      );
    });
    out.push(
      `<text x="${gx + groupWidth / 2}" y="${plotTop + plotHeight + 20}" text-anchor="middle" fill="#111827">${xml(w.short ?? w.id)}</text>`,
    );
  });
  out.push(`<line x1="${left}" x2="${width - 8}" y1="${y(0).toFixed(1)}" y2="${y(0).toFixed(1)}" stroke="#111827"/>`);
  const m = results.machine;
  out.push(
    `<text x="${left}" y="${height - 14}" fill="#6b7280" font-size="11">${xml(`${m.date.slice(0, 10)} · ${m.cpu}, ${m.nproc} cores · node ${m.node} · ${results.pinning.pinned ? "server on core 0, wrk on core 1" : "not pinned"} · commit ${m.commit}`)}</text>`,
  );
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}

export function machineSection(results) {
  const m = results.machine;
  const c = results.config;
  return [
    `- Date: ${m.date}`,
    `- Machine: ${m.nproc} cores (${m.cpu}), ${m.ramGiB} GiB RAM, ${m.kernel}; 1-minute load before the run ${m.loadBefore}`,
    `- Versions: Node ${m.node}, ${m.rustc}, ${m.wrk.split(" [")[0]}`,
    `- Commit: ${m.commit}${m.dirtyTree ? " (with uncommitted changes in the work tree)" : ""}`,
    `- Pinning: ${results.pinning.pinned ? "each server on core 0 (`taskset -c 0`), wrk on core 1 (`taskset -c 1`)" : results.pinning.notice}`,
    `- Load: wrk, 1 thread, ${c.connections} connections; ${c.warmup} s warm-up, then ${c.runs} runs of ${c.duration} s per server and workload, servers alternating`,
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
  ];
  if (crossingMarkdown) parts.push("### N-API crossing (tinybench)", "", crossingMarkdown, "");
  if (results.workloads.length > 0) {
    parts.push(
      "### Load (wrk)",
      "",
      loadTable(results),
      "",
      "![Requests/s relative to node:http](results/latest.svg)",
      "",
    );
  }
  if (results.notices.length > 0) parts.push("Notices:", "", ...results.notices.map((n) => `- ${n}`), "");
  parts.push(end);
  writeFileSync(readmePath, text.slice(0, from) + parts.join("\n") + text.slice(to + end.length));
}
