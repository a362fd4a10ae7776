// Builds one of peregrine-core's Rust examples in release mode for the harness: the
// pure-Rust ceiling server (`hello`) and the native echo client (`echo_client`).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";

/**
 * Builds `target/release/examples/<name>`. Returns { binary, problem }: `problem` is
 * undefined after a good build, a warning when the build failed but an older binary
 * exists, and names "no binary" when there is nothing to run.
 */
export function buildExample(root, name) {
  const binary = path.join(root, "target/release/examples", name);
  const build = spawnSync("cargo", ["build", "--release", "-p", "peregrine-core", "--example", name], {
    cwd: root,
    stdio: ["ignore", "ignore", "pipe"],
    encoding: "utf8",
  });
  if (build.status === 0) return { binary, problem: undefined };
  const why = (build.stderr ?? String(build.error)).trim().split("\n").slice(-3).join(" / ");
  const problem = existsSync(binary)
    ? `cargo build of the Rust example ${name} failed (${why}); measuring with the binary already in target/release.`
    : `cargo build of the Rust example ${name} failed and no binary exists: ${why}`;
  return { binary, problem };
}
