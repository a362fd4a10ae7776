/** Percent-decodes a path, leaving %2F encoded so that segments keep their meaning. */
export function decodePath(raw: string): string {
  if (!raw.includes("%")) return raw;
  try {
    return raw
      .split(/%2f/i)
      .map((part) => decodeURIComponent(part))
      .join("%2F");
  } catch {
    // Malformed escapes stay as sent; routing then simply does not match them.
    return raw;
  }
}

export interface SplitTarget {
  readonly path: string;
  readonly queryString: string;
}

/** The last target split: a run of requests for one target is split once. */
let lastSplit: { target: string; split: SplitTarget } = { target: "/", split: { path: "/", queryString: "" } };

/** Splits a request target into its decoded path and its query string ("?..." or ""). */
export function splitTarget(target: string): SplitTarget {
  if (target === lastSplit.target) return lastSplit.split;
  const q = target.indexOf("?");
  const split =
    q < 0
      ? { path: decodePath(target), queryString: "" }
      : { path: decodePath(target.slice(0, q)), queryString: target.slice(q) };
  lastSplit = { target, split };
  return split;
}
