// Idle keep-alive connections: bench/clients/idle.mjs opens them (pinned like the load
// generators); the server's resident set (VmRSS) is read before they open and once
// they have all been answered and the server has settled. The figure is the growth.
import { spawn } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { benchJson } from "../process.mjs";
import { residentBytes } from "../servers.mjs";

const MiB = 2 ** 20;
/** How long the server gets after the last answer before its RSS is read. */
const SETTLE_MS = 1000;

export async function runIdle({ root, pin, handle, connections }) {
  const before = residentBytes(handle.pid);
  if (before === null) throw new Error(`cannot read /proc/${handle.pid}/status: the idle workload needs Linux`);
  const timeoutMs = 120_000;
  const argv = [
    ...pin,
    process.execPath,
    path.join(root, "bench/clients/idle.mjs"),
    `--port=${handle.port}`,
    `--connections=${connections}`,
    `--timeout-ms=${timeoutMs}`,
  ];
  const child = spawn(argv[0], argv.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (c) => {
    stderr = (stderr + c).slice(-2000);
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const killer = setTimeout(() => child.kill("SIGKILL"), timeoutMs + 30_000);
  try {
    const lines = createInterface({ input: child.stdout });
    let after = null;
    let out = "";
    for await (const line of lines) {
      out += `${line}\n`;
      if (line.startsWith("READY ")) {
        await new Promise((r) => setTimeout(r, SETTLE_MS));
        after = residentBytes(handle.pid);
        child.stdin.write("close\n");
      }
    }
    const code = await exited;
    const raw = benchJson(out);
    if (code !== 0 || raw === undefined || after === null) {
      throw new Error(`bench/clients/idle.mjs failed (exit ${code}):\n${out}${stderr}`);
    }
    const growth = (after - before) / MiB;
    return {
      rssGrowthMiB: growth,
      rssBeforeMiB: before / MiB,
      rssAfterMiB: after / MiB,
      perConnectionKiB: raw.open > 0 ? (growth * 1024) / raw.open : null,
      open: raw.open,
      connectMs: raw.connectMs,
      errors: connections - raw.open,
      errorDetail: { failed: raw.failed, closedByServer: raw.closedByServer },
    };
  } finally {
    clearTimeout(killer);
    child.kill("SIGKILL");
  }
}
