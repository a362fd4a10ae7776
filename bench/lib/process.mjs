// Runs one load generator or helper process to completion, bounded in time, and
// finds the one "BENCH_JSON {...}" line the bench's own scripts (wrk's report.lua,
// bench/clients/*.mjs, bench/crossing.mjs) print among their other output.
import { spawn } from "node:child_process";
import { cpuTimes } from "./cores.mjs";

/**
 * Spawns argv, collects stdout and stderr, and kills it after `timeoutMs`. Resolves
 * with the exit code, the output, and `cpu`, the CPU times (cores.mjs) from its start
 * to its exit: the window in which a load generator loads, without what the harness
 * does before or after (parsing a million-line h2load log takes most of a second).
 * Rejects only when the command cannot start.
 */
export function runToEnd(argv, { timeoutMs, cwd, env, missing } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), {
      cwd,
      env: env === undefined ? process.env : { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const before = cpuTimes();
    let out = "";
    const keep = (chunk) => {
      out += chunk;
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.once("error", (error) =>
      reject(error.code === "ENOENT" && missing ? new Error(`${argv[0]} was not found: ${missing}`) : error),
    );
    let timedOut = false;
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
          }, timeoutMs);
    child.once("exit", (code, signal) => {
      const cpu = { before, after: cpuTimes() };
      clearTimeout(timer);
      resolve({ code, signal, timedOut, out, cpu });
    });
  });
}

/** The parsed BENCH_JSON line of `out`, or undefined. */
export function benchJson(out) {
  const line = out.split("\n").find((l) => l.startsWith("BENCH_JSON "));
  return line === undefined ? undefined : JSON.parse(line.slice("BENCH_JSON ".length));
}

/**
 * runToEnd, then the BENCH_JSON line, as `json` beside runToEnd's `cpu`; rejects with
 * the command and its output otherwise.
 */
export async function runForJson(argv, options = {}) {
  const { code, timedOut, out, cpu } = await runToEnd(argv, options);
  const json = code === 0 ? benchJson(out) : undefined;
  if (json === undefined) {
    const why = timedOut ? `killed after ${options.timeoutMs} ms` : `exit ${code}`;
    throw new Error(`${argv.join(" ")} failed (${why}):\n${out.slice(-2000)}`);
  }
  return { json, cpu };
}
