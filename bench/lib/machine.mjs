// What the results were measured on, and whether servers and load can be pinned.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";

/** wrk prints its version with its usage and exits 1, so the exit status is ignored. */
function firstLine(command, args) {
  const result = spawnSync(command, args, { encoding: "utf8" });
  if (result.error) return undefined;
  return `${result.stdout}${result.stderr}`.trim().split("\n")[0];
}

function cpuModel() {
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8")
      .split("\n")
      .find((l) => l.startsWith("model name"));
    if (line) return line.split(":").slice(1).join(":").trim();
  } catch {
    // Not Linux: os.cpus() below.
  }
  return os.cpus()[0]?.model ?? "unknown";
}

export function describeMachine(root) {
  const git = (args) => spawnSync("git", args, { cwd: root, encoding: "utf8" }).stdout?.trim();
  // Changes under bench/ do not change what is measured.
  const dirty = git(["status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench"]);
  return {
    date: new Date().toISOString(),
    nproc: os.availableParallelism(),
    cpu: cpuModel(),
    ramGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    /** The 1-minute load average before the run: other work on the machine skews results. */
    loadBefore: Math.round(os.loadavg()[0] * 100) / 100,
    node: process.version,
    rustc: firstLine("rustc", ["--version"]) ?? "not found",
    wrk: firstLine("wrk", ["--version"]) ?? "not found",
    h2load: firstLine("h2load", ["--version"]) ?? "h2load not found",
    commit: git(["rev-parse", "--short", "HEAD"]) ?? "unknown",
    dirtyTree: dirty === undefined ? false : dirty !== "",
  };
}

/**
 * The command prefixes that pin a server to core 0 and the load generator to core 1,
 * with the cores' indexes, and a notice when that is not possible (then both run
 * unpinned).
 */
export function pinning() {
  const none = (notice) => ({ server: [], load: [], pinned: false, serverCores: [], loadCores: [], notice });
  if (spawnSync("taskset", ["-c", "0", "true"]).status !== 0) {
    return none("taskset is unavailable (Debian package util-linux): servers and wrk run unpinned.");
  }
  if (os.availableParallelism() < 2 || spawnSync("taskset", ["-c", "1", "true"]).status !== 0) {
    return none("this process may use only one core: servers and wrk share it, unpinned.");
  }
  return {
    server: ["taskset", "-c", "0"],
    load: ["taskset", "-c", "1"],
    pinned: true,
    serverCores: [0],
    loadCores: [1],
    notice: undefined,
  };
}

/**
 * The scaling mode's pinning: the load generator on the last quarter of the cores (at
 * least one), the server on the rest, so that workers have cores to spread over. With
 * fewer than three cores there is nothing to scale over: unpinned, with a notice.
 */
export function scalingPinning() {
  const n = os.availableParallelism();
  if (n < 3 || spawnSync("taskset", ["-c", "0", "true"]).status !== 0) {
    return {
      server: [],
      load: [],
      serverCores: n,
      loadThreads: 1,
      notice: `the scaling mode needs taskset and at least 3 cores to mean much (this process may use ${n}): unpinned.`,
    };
  }
  const loadCores = Math.max(1, Math.floor(n / 4));
  const serverCores = n - loadCores;
  return {
    server: ["taskset", "-c", `0-${serverCores - 1}`],
    load: ["taskset", "-c", `${serverCores}-${n - 1}`],
    serverCores,
    loadThreads: loadCores,
    notice: undefined,
  };
}
