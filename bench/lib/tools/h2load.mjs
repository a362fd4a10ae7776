// h2load (nghttp2-client): HTTP/2 throughput (h2c, or h2 over TLS), and HTTP/1.1 at a
// fixed request rate (--h1 --rps). h2load prints no percentiles, so every run writes
// per-request timings with --log-file, and the percentiles are computed from those.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { runToEnd } from "../process.mjs";
import { percentile } from "../stats.mjs";

const number = (text, re) => {
  const m = re.exec(text);
  return m === null ? null : Number(m[1]);
};

/** h2load's summary: requests/s, the counts, and the protocol it negotiated. */
export function parseSummary(out) {
  const counts =
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      out,
    );
  const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  if (counts === null || status === null) return null;
  const [, , , done, succeeded, failed, errored, timeout] = counts.map(Number);
  const [, , , s4xx, s5xx] = status.map(Number);
  return {
    rps: number(out, /finished in [\d.]+m?s, ([\d.]+) req\/s/),
    done,
    succeeded,
    protocol: /Application protocol: (\S+)/.exec(out)?.[1] ?? null,
    errors: { failed, errored, timeout, status4xx: s4xx, status5xx: s5xx },
  };
}

/**
 * Latency percentiles in milliseconds from a --log-file: tab-separated start time (µs
 * since the epoch), status (-1 for a failed stream) and µs until the end of the response.
 */
export function logLatency(text) {
  const values = [];
  for (const line of text.split("\n")) {
    const fields = line.split("\t");
    if (fields.length >= 3 && Number(fields[1]) > 0) values.push(Number(fields[2]) / 1000);
  }
  const sorted = Float64Array.from(values).sort();
  return {
    samples: sorted.length,
    mean: sorted.length === 0 ? null : sorted.reduce((a, b) => a + b, 0) / sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length === 0 ? null : sorted[sorted.length - 1],
  };
}

/**
 * Runs h2load once for `seconds` (pinned when `pin` is a taskset prefix). `clients` and
 * `streams` are -c and -m; `perClientRps` (with `h1`) gives a fixed-rate HTTP/1.1 load.
 * Rejects when h2load fails or negotiates another protocol than `expectProtocol`.
 */
export async function runH2load({ pin, url, seconds, clients, streams = 1, h1 = false, perClientRps, expectProtocol }) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "peregrine-bench-h2load-"));
  const log = path.join(dir, "requests.tsv");
  const argv = [...pin, "h2load", "-t1", `-c${clients}`, `-m${streams}`, `-D${seconds}`, `--log-file=${log}`];
  if (h1) argv.push("--h1");
  if (perClientRps !== undefined) argv.push(`--rps=${perClientRps}`);
  argv.push(url);
  try {
    const { code, timedOut, out, cpu } = await runToEnd(argv, {
      timeoutMs: (seconds + 30) * 1000,
      missing: "install the Debian package nghttp2-client",
    });
    const summary = code === 0 ? parseSummary(out) : null;
    if (summary === null || summary.rps === null) {
      throw new Error(
        `h2load failed (${timedOut ? "timed out" : `exit ${code}`}): ${argv.join(" ")}\n${out.slice(-2000)}`,
      );
    }
    if (expectProtocol !== undefined && summary.protocol !== expectProtocol) {
      throw new Error(`h2load negotiated ${summary.protocol}, not ${expectProtocol}: ${argv.join(" ")}`);
    }
    const errors = Object.values(summary.errors).reduce((a, b) => a + b, 0);
    return {
      rps: summary.rps,
      requests: summary.done,
      latencyMs: logLatency(readFileSync(log, "utf8")),
      errors,
      errorDetail: summary.errors,
      cpu,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
