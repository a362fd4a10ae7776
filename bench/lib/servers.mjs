// The servers the harness measures, and how to start and stop one.
//
// Every server serves the routes of examples/hello on 127.0.0.1:PORT:
//   GET /      -> "Hello, World!" (text/plain)
//   GET /json  -> {"message":"Hello, World!"}
//   POST /echo -> the request body, streamed back
//
// `protocols` says which workloads a server takes part in: "http1" and "h2c" in
// cleartext, "https" (HTTP/1.1 over TLS) and "h2" (HTTP/2 over TLS). A server started
// for a TLS protocol gets the harness's certificate as TLS_CERT and TLS_KEY (PEM file
// paths) and listens on https. `workloads`, when given, limits a server to those
// workload ids. `workloads`, when set, limits a server to the
// workloads it names.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import path from "node:path";
import { buildExample } from "./cargo.mjs";

const node = process.execPath;

/** The certificate's PEM paths, when TLS is asked for. */
const certificateEnv = (tls) => (tls ? { TLS_CERT: tls.cert, TLS_KEY: tls.key } : {});

/** Runs a script of bench/servers with PORT, and the certificate when TLS is asked for. */
const benchScript =
  (script) =>
  (root, { port, tls }) => ({
    cmd: node,
    args: [path.join(root, "bench/servers", script)],
    env: { PORT: String(port), ...certificateEnv(tls) },
  });

/** What Peregrine and its Rust twin take: PEREGRINE_URLS on http or https, and the certificate. */
const peregrineEnv = ({ port, tls }) => ({
  PEREGRINE_URLS: `${tls ? "https" : "http"}://127.0.0.1:${port}`,
  ...certificateEnv(tls),
});

const needsBuild = (root) =>
  existsSync(path.join(root, "packages/peregrine/dist/index.js"))
    ? undefined
    : "packages/peregrine/dist is missing: run `npm run build` first.";

/**
 * `role`: `subject` is what the targets are about, `ceiling` the native limit,
 * `baseline` a server some workload's ratios are computed against, `peer` the rest.
 */
export const SERVERS = [
  {
    // The hello routes of examples/hello, plus the options it does not take from the
    // environment (bench/servers/peregrine.mjs), on http or https.
    id: "peregrine",
    label: "peregrine (native)",
    role: "subject",
    protocols: ["http1", "h2c", "https", "h2"],
    command: (root, options) => ({
      cmd: node,
      args: [path.join(root, "bench/servers/peregrine.mjs")],
      env: peregrineEnv(options),
    }),
    prepare: needsBuild,
  },
  {
    id: "rust",
    label: "pure Rust (ceiling)",
    role: "ceiling",
    protocols: ["http1", "h2c", "https", "h2"],
    command: (root, options) => ({
      cmd: path.join(root, "target/release/examples/hello"),
      args: [],
      env: peregrineEnv(options),
    }),
    prepare: (root) => buildExample(root, "hello").problem,
  },
  {
    id: "node-http",
    label: "node:http",
    role: "baseline",
    protocols: ["http1"],
    command: benchScript("node-http.mjs"),
  },
  {
    id: "node-https",
    label: "node:https",
    role: "baseline",
    protocols: ["https"],
    command: benchScript("node-http.mjs"),
  },
  {
    id: "node-http2",
    label: "node:http2 (h2c)",
    role: "baseline",
    protocols: ["h2c"],
    command: benchScript("node-http2.mjs"),
  },
  {
    id: "node-http2-secure",
    label: "node:http2 (secure)",
    role: "baseline",
    protocols: ["h2"],
    command: benchScript("node-http2.mjs"),
  },
  {
    // Only the hosting workload: the same app as "peregrine", one loopback hop further.
    id: "peregrine-host",
    label: "peregrine host (out-of-process)",
    role: "peer",
    protocols: ["http1"],
    workloads: ["hosting"],
    command: benchScript("peregrine-host.mjs"),
    prepare: (root) =>
      existsSync(path.join(root, "examples/hello/dist/main.js"))
        ? needsBuild(root)
        : "examples/hello/dist/main.js is missing: run `npm run build` first.",
  },
  { id: "fastify", label: "fastify", role: "peer", protocols: ["http1"], command: benchScript("fastify.mjs") },
  {
    id: "hono",
    label: "hono (@hono/node-server)",
    role: "peer",
    protocols: ["http1"],
    command: benchScript("hono.mjs"),
  },
  { id: "express", label: "express", role: "peer", protocols: ["http1"], command: benchScript("express.mjs") },
];

/** Whether a protocol runs over TLS. */
export const overTls = (protocol) => protocol === "https" || protocol === "h2";

export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Whether something accepts TCP connections on the port (the server is listening). */
function accepts(port) {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1" });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/**
 * `prlimit` raises the open-files limit of the server (10,000 idle connections need
 * more than the common 1,024); Node raises its own, the Rust example does not.
 */
const fileLimit =
  spawnSync("prlimit", ["--nofile=65536:65536", "true"]).status === 0 ? ["prlimit", "--nofile=65536:65536", "--"] : [];

/** The server's resident set in bytes (VmRSS of /proc/PID/status), or null off Linux. */
export function residentBytes(pid) {
  try {
    const line = readFileSync(`/proc/${pid}/status`, "utf8")
      .split("\n")
      .find((l) => l.startsWith("VmRSS:"));
    return line === undefined ? null : Number(line.split(/\s+/)[1]) * 1024;
  } catch {
    return null;
  }
}

/**
 * Starts a server (pinned when `pin` is a taskset prefix) for `protocol`, waits until
 * it accepts connections, and returns a handle with its base URL, its process id and
 * a stop() function. `env` adds variables a workload sets (bench/lib/workloads.mjs).
 */
export async function startServer(server, root, pin, { protocol, tls, env = {}, readyTimeoutMs = 20_000 } = {}) {
  const port = await freePort();
  const secure = overTls(protocol ?? server.protocols[0]);
  const command = server.command(root, { port, tls: secure ? tls : undefined });
  // taskset and prlimit exec the server, so the child's pid is the server's.
  const argv = [...pin, ...fileLimit, command.cmd, ...command.args];
  const child = spawn(argv[0], argv.slice(1), {
    cwd: root,
    env: { ...process.env, PEREGRINE_IO_THREADS: "", NODE_ENV: "production", ...command.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (chunk) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  let exited = null;
  const exit = new Promise((resolve) =>
    child.once("exit", (code, signal) => {
      exited = { code, signal };
      resolve();
    }),
  );
  child.once("error", (error) => {
    exited = { code: null, signal: null, error };
  });

  const base = `${secure ? "https" : "http"}://127.0.0.1:${port}`;
  const stop = async () => {
    if (exited === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await exit;
      clearTimeout(timer);
    }
  };
  const deadline = Date.now() + readyTimeoutMs;
  while (!(await accepts(port))) {
    if (exited !== null) {
      throw new Error(`${server.label} exited before it was ready (${JSON.stringify(exited)}):\n${output}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${server.label} did not listen on ${base} within ${readyTimeoutMs} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { server, base, port, pid: child.pid, stop, output: () => output };
}
