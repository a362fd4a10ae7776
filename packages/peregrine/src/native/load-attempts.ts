/**
 * What the addon loader tried, oldest first, one line each.
 *
 * napi-rs's generated loader (packages/native/index.cjs) tries the binary built next to
 * it, then the platform package (@peregrine/native-<platform>), and when all fail throws
 * one generic error whose `cause` chain holds each attempt's error, newest first. When
 * @peregrine/native itself is missing there is no chain, only the require error.
 */
export function loadAttempts(error: unknown): string[] {
  const chain = (error as { cause?: unknown } | undefined)?.cause;
  if (chain === undefined || chain === null) return [firstLine(error)];
  const attempts: string[] = [];
  for (let link: unknown = chain; link !== undefined && link !== null; link = (link as { cause?: unknown }).cause) {
    attempts.push(firstLine(link));
  }
  return attempts.reverse();
}

/** The message's first line: require errors append the whole require stack. */
function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n", 1)[0] ?? message;
}

/** The message of PEREGRINE_NATIVE_UNAVAILABLE: what was tried, and what to use instead. */
export function nativeUnavailableMessage(error: unknown): string {
  const tried = loadAttempts(error)
    .map((attempt, i) => `(${i + 1}) ${attempt}`)
    .join("; ");
  return (
    `the native addon @peregrine/native could not be loaded on ${process.platform}-${process.arch}. ` +
    `Tried, in order: ${tried}. Reinstall peregrine so npm installs the platform package, build the addon ` +
    `from a clone (npm run build:native), or use the NodeServer (server: "node"), which needs no addon`
  );
}
