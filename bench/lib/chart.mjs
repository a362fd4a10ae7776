// The SVG chart of bench/results/latest.svg, drawn by hand: one group of bars per
// workload, one bar per server, height = the workload's figure relative to its
// baseline, with min/max error bars, and each target against the baseline as a
// dashed line labelled met or missed.

const COLORS = ["#ea580c", "#7c3aed", "#6b7280", "#0d9488", "#2563eb", "#db2777", "#65a30d", "#0891b2"];

const xml = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export function ratioChart(results) {
  const workloads = results.workloads;
  const serverIds = [...new Set(workloads.flatMap((w) => w.servers.map((s) => s.id)))];
  const labels = new Map(workloads.flatMap((w) => w.servers.map((s) => [s.id, s.label])));
  const color = new Map(serverIds.map((id, i) => [id, COLORS[i % COLORS.length]]));
  /** Targets drawn as lines: those against the workload's own baseline. */
  const lines = (w) => w.targets.filter((t) => t.reference === w.baseline);

  const top = Math.max(
    1,
    ...workloads.flatMap((w) => w.servers.map((s) => Math.max(s.ratio ?? 0, s.ratioRange.max ?? 0))),
    ...workloads.flatMap((w) => lines(w).map((t) => t.min ?? t.max)),
  );
  const yMax = top <= 2 ? Math.ceil(top * 4) / 4 + 0.25 : Math.ceil(top + 0.5);
  const step = yMax <= 2.5 ? 0.25 : yMax <= 6 ? 0.5 : 1;

  const bar = 22;
  const gap = 4;
  const groupPad = 40;
  const left = 56;
  // Each group is as wide as the servers it measured, and at least wide enough for its label.
  const groupWidths = workloads.map((w) =>
    Math.max(w.servers.length * (bar + gap) - gap, (w.short ?? w.id).length * 6.6),
  );
  const width = Math.max(760, left + groupWidths.reduce((a, b) => a + b + groupPad, 0) + groupPad);
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
  // Below the axis: each group's label, then its targets, one line each.
  const targetLines = Math.max(0, ...workloads.map((w) => lines(w).length));
  const height = plotTop + plotHeight + 60 + targetLines * 14;
  const y = (v) => plotTop + plotHeight - (v / yMax) * plotHeight;

  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(
    `<text x="${left}" y="20" font-size="14" font-weight="600">Each workload relative to its baseline, median of ${results.config.runs} runs</text>`,
  );
  out.push(`<text x="${width - 8}" y="20" text-anchor="end" fill="#6b7280">bars: min–max · dashed: target</text>`);
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
  let gx = left + groupPad;
  workloads.forEach((w, wi) => {
    w.servers.forEach((s, i) => {
      // Bars are centred in their group, which its label may make wider.
      const x = gx + (groupWidths[wi] - (w.servers.length * (bar + gap) - gap)) / 2 + i * (bar + gap);
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
    const labelY = plotTop + plotHeight + 20;
    out.push(
      `<text x="${gx + groupWidths[wi] / 2}" y="${labelY}" text-anchor="middle" fill="#111827">${xml(w.short ?? w.id)}</text>`,
    );
    lines(w).forEach((t, ti) => {
      const ty = y(t.min ?? t.max).toFixed(1);
      const stroke = t.result === "met" ? "#15803d" : "#b91c1c";
      const text = `target ${t.min !== undefined ? "≥" : "≤"} ${(t.min ?? t.max).toFixed(2)}×: ${t.result}`;
      out.push(
        `<line x1="${gx - 6}" x2="${gx + groupWidths[wi] + 6}" y1="${ty}" y2="${ty}" stroke="${stroke}" stroke-width="2" stroke-dasharray="6 3"/>`,
      );
      out.push(
        `<text x="${gx + groupWidths[wi] / 2}" y="${labelY + 14 * (ti + 1)}" text-anchor="middle" font-size="11" fill="${stroke}">${xml(text)}</text>`,
      );
    });
    gx += groupWidths[wi] + groupPad;
  });
  out.push(`<line x1="${left}" x2="${width - 8}" y1="${y(0).toFixed(1)}" y2="${y(0).toFixed(1)}" stroke="#111827"/>`);
  const m = results.machine;
  out.push(
    `<text x="${left}" y="${height - 14}" fill="#6b7280" font-size="11">${xml(`${m.date.slice(0, 10)} · ${m.cpu}, ${m.nproc} cores · node ${m.node} · ${results.pinning.pinned ? "server on core 0, load generator on core 1" : "not pinned"} · commit ${m.commit}`)}</text>`,
  );
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
