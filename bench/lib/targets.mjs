// The issues' targets, checked against one run's figures: each is a ratio of the
// subject server's figure to a reference server's (the workload's baseline unless
// the target names another), which must be ≥ `min` or ≤ `max`; the crossing has an
// absolute target in nanoseconds per request.

/** The crossing target: issue 4's amortized cost per request on the JS thread. */
export const CROSSING_TARGET_NS = 250;

const verdict = (measured, { min, max }) =>
  measured === null ? "not measured" : (min !== undefined ? measured >= min : measured <= max) ? "met" : "missed";

/** "≥ 3.00× node:http", "≤ 0.50× node:http". */
export function describeTarget(target) {
  return `${target.min !== undefined ? "≥" : "≤"} ${(target.min ?? target.max).toFixed(2)}× ${target.referenceLabel}`;
}

/**
 * Evaluates a workload's targets for each subject server in `summaries` (the rows of
 * run.mjs's summarize()); returns one entry per subject and target. With `saturated`
 * (cores.mjs saturatedLoad), a missed target above the ratio the load generator
 * reached carries that ratio as `loadReach`: the harness could not have measured it
 * met on this machine.
 * @param {{ server: { value: number }, ratio: number | null } | null} [saturated]
 */
export function evaluateTargets(workload, summaries, saturated = null) {
  const byId = new Map(summaries.map((s) => [s.id, s]));
  const out = [];
  for (const subject of summaries.filter((s) => s.role === "subject")) {
    for (const target of workload.targets ?? []) {
      const referenceId = target.reference ?? workload.baseline;
      const reference = byId.get(referenceId);
      const measured =
        reference?.value && subject.value !== null && subject.value !== undefined
          ? subject.value / reference.value
          : null;
      const result = verdict(measured, target);
      const loadReach = saturated && reference?.value ? saturated.server.value / reference.value : null;
      out.push({
        subject: subject.id,
        reference: referenceId,
        referenceLabel: reference?.label ?? referenceId,
        min: target.min,
        max: target.max,
        measured,
        result,
        loadReach: result === "missed" && target.min !== undefined && loadReach < target.min ? loadReach : null,
      });
    }
  }
  return out;
}

/** The crossing target against the JS-thread mean at the largest batch measured. */
export function crossingTarget(rows) {
  // The crossing is the server boundary (crossing.mjs "server only"): the JS thread's
  // CPU time less the injection, which stands in for hyper's I/O threads; the
  // pipeline's own cost is reported beside it.
  const largest = rows?.filter((r) => (r.server ?? r.js) != null).at(-1);
  if (largest === undefined) return null;
  const row = largest.server ?? largest.js;
  const measured = row.jsThreadMean ?? row.mean;
  return {
    batch: largest.batch,
    maxNs: CROSSING_TARGET_NS,
    measured,
    result: measured <= CROSSING_TARGET_NS ? "met" : "missed",
  };
}
