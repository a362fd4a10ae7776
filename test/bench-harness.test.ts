// The bench harness's reading of its own runs: how busy the pinned cores were, and a
// target the load generator could not have measured met (bench/lib/cores.mjs).
import os from "node:os";
import { describe, expect, it } from "vitest";
import { busyShare, cpuTimes, SATURATED, saturatedLoad, withCoreUse } from "../bench/lib/cores.mjs";
import { targetsTable } from "../bench/lib/report.mjs";
import { evaluateTargets } from "../bench/lib/targets.mjs";

const plaintext = {
  id: "plaintext",
  short: "plaintext (GET /)",
  baseline: "node-http",
  metric: { better: "higher" },
  targets: [{ min: 3.0 }, { min: 0.7, reference: "rust" }],
};

/** A summary row as run.mjs's summarize() makes it. */
function row(id: string, role: string, value: number, loadCoreBusy: number | null) {
  return { id, label: id, role, value, ratio: value / 64_000, loadCoreBusy, serverCoreBusy: 0.99 };
}

describe("core use", () => {
  it("reads every CPU's busy and total time from /proc/stat", () => {
    const times = cpuTimes();
    if (os.platform() !== "linux") {
      expect(times).toBeNull();
      return;
    }
    expect(times?.size).toBe(os.cpus().length);
    const cpu0 = times?.get(0);
    expect(cpu0?.total).toBeGreaterThan(0);
    expect(cpu0?.busy).toBeLessThanOrEqual(cpu0?.total ?? 0);
  });

  it("shares the busy time of the given cores between two readings", () => {
    const before = new Map([
      [0, { busy: 100, total: 200 }],
      [1, { busy: 50, total: 200 }],
    ]);
    const after = new Map([
      [0, { busy: 190, total: 300 }],
      [1, { busy: 75, total: 300 }],
    ]);
    expect(busyShare(before, after, [0])).toBeCloseTo(0.9);
    expect(busyShare(before, after, [1])).toBeCloseTo(0.25);
    expect(busyShare(before, after, [0, 1])).toBeCloseTo(0.575);
    expect(busyShare(before, after, [])).toBeNull();
    expect(busyShare(before, after, [7])).toBeNull();
    expect(busyShare(null, after, [0])).toBeNull();
  });
});

describe("a run's core use", () => {
  const pinned = { pinned: true, serverCores: [0], loadCores: [1] };
  const window = {
    before: new Map([
      [0, { busy: 0, total: 100 }],
      [1, { busy: 0, total: 100 }],
    ]),
    after: new Map([
      [0, { busy: 99, total: 200 }],
      [1, { busy: 40, total: 200 }],
    ]),
  };

  it("covers the load generator's own run when the result says when that was", async () => {
    const result = await withCoreUse(pinned, async () => ({ rps: 5, cpu: window }));
    expect(result).toEqual({ rps: 5, serverCoreBusy: 0.99, loadCoreBusy: 0.4 });
  });

  it("is not measured unpinned", async () => {
    const result = await withCoreUse({ ...pinned, pinned: false }, async () => ({ rps: 5, cpu: window }));
    expect(result).toEqual({ rps: 5, serverCoreBusy: null, loadCoreBusy: null });
  });
});

describe("a saturated load generator", () => {
  const summaries = [
    row("peregrine", "subject", 98_000, 0.82),
    row("rust", "ceiling", 123_000, 0.97),
    row("node-http", "baseline", 64_000, 0.7),
  ];

  it("is the highest figure among the servers whose load core was saturated", () => {
    expect(saturatedLoad(plaintext, summaries)?.server.id).toBe("rust");
    const both = summaries.map((s) => (s.id === "peregrine" ? { ...s, loadCoreBusy: SATURATED } : s));
    expect(saturatedLoad(plaintext, both)?.server.id).toBe("rust");
    const none = summaries.map((s) => ({ ...s, loadCoreBusy: 0.5 }));
    expect(saturatedLoad(plaintext, none)).toBeNull();
    const unmeasured = summaries.map((s) => ({ ...s, loadCoreBusy: null }));
    expect(saturatedLoad(plaintext, unmeasured)).toBeNull();
    expect(saturatedLoad({ ...plaintext, metric: { better: "lower" } }, summaries)).toBeNull();
  });

  it("marks a missed target above its reach, and only that one", () => {
    const targets = evaluateTargets(plaintext, summaries, saturatedLoad(plaintext, summaries));
    const [vsNode, vsCeiling] = targets;
    expect(vsNode?.result).toBe("missed");
    expect(vsNode?.loadReach).toBeCloseTo(123_000 / 64_000);
    expect(vsCeiling?.result).toBe("met");
    expect(vsCeiling?.loadReach).toBeNull();

    const reachable = evaluateTargets(
      { ...plaintext, targets: [{ min: 1.8 }] },
      summaries,
      saturatedLoad(plaintext, summaries),
    );
    expect(reachable[0]?.result).toBe("missed");
    expect(reachable[0]?.loadReach).toBeNull();

    const table = targetsTable({ workloads: [{ ...plaintext, servers: summaries, targets }] });
    expect(table).toContain("**missed** (the load generator saturated at 1.92×)");
    expect(table).toContain("| 0.80× | **met** |");
  });
});
