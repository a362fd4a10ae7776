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

/** Splits a request target into its decoded path and its query string ("?..." or ""). */
export function splitTarget(target: string): { path: string; queryString: string } {
  const q = target.indexOf("?");
  if (q < 0) return { path: decodePath(target), queryString: "" };
  return { path: decodePath(target.slice(0, q)), queryString: target.slice(q) };
}
