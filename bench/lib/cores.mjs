// How busy the server's core and the load generator's core were during one run, from
// the kernel's per-CPU time counters (/proc/stat, Linux). Pinned, each core runs one
// side: a load generator that keeps its core near 100 % busy is the limit of the
// figure, and a faster server would measure the same.
import { readFileSync } from "node:fs";

/** A load core at least this busy (median over a server's runs) counts as saturated. */
export const SATURATED = 0.9;

/**
 * Every CPU's busy and total time in clock ticks, by CPU index, or null where
 * /proc/stat cannot be read. Busy is all but idle and iowait.
 */
export function cpuTimes() {
  let text;
  try {
    text = readFileSync("/proc/stat", "utf8");
  } catch {
    return null;
  }
  const times = new Map();
  for (const line of text.split("\n")) {
    const match = /^cpu(\d+) (.*)$/.exec(line);
    if (match === null) continue;
    const ticks = match[2].trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    const total = ticks.slice(0, 8).reduce((sum, t) => sum + t, 0);
    const idle = ticks[3] + ticks[4];
    times.set(Number(match[1]), { busy: total - idle, total });
  }
  return times;
}

/** The share of `cores`' time that was busy between two cpuTimes(), 0 to 1, or null. */
export function busyShare(before, after, cores) {
  if (before === null || after === null || cores === undefined || cores.length === 0) return null;
  let busy = 0;
  let total = 0;
  for (const core of cores) {
    const a = before.get(core);
    const b = after.get(core);
    if (a === undefined || b === undefined) return null;
    busy += b.busy - a.busy;
    total += b.total - a.total;
  }
  return total > 0 ? busy / total : null;
}

/**
 * Runs `measure` and adds how busy the pinned cores were, as `serverCoreBusy` and
 * `loadCoreBusy` (null when unpinned or not on Linux): while the load generator ran,
 * when the result says when that was (`cpu`, from process.mjs runToEnd), otherwise
 * over the whole of `measure`.
 */
export async function withCoreUse(pin, measure) {
  const outer = pin.pinned ? cpuTimes() : null;
  const { cpu, ...result } = await measure();
  const before = outer === null ? null : (cpu?.before ?? outer);
  const after = outer === null ? null : (cpu?.after ?? cpuTimes());
  return {
    ...result,
    serverCoreBusy: busyShare(before, after, pin.serverCores),
    loadCoreBusy: busyShare(before, after, pin.loadCores),
  };
}

/**
 * The server whose figure the load generator limited in a workload measured in
 * "higher is better" units: of the servers whose load core was saturated (median over
 * their runs), the one with the highest figure, with its ratio to the baseline; or
 * null when the load generator kept up with every server.
 */
export function saturatedLoad(workload, summaries) {
  if (workload.metric.better !== "higher") return null;
  const saturated = summaries.filter((s) => s.loadCoreBusy !== null && s.loadCoreBusy >= SATURATED && s.value !== null);
  if (saturated.length === 0) return null;
  const server = saturated.reduce((a, b) => (b.value > a.value ? b : a));
  return { server, ratio: server.ratio };
}
