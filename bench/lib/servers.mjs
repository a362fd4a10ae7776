// The servers the harness measures, and how to start, check and stop one.
//
// Every server serves the routes of examples/hello on 127.0.0.1:PORT:
//   GET /      -> "Hello, World!" (text/plain)
//   GET /json  -> {"message":"Hello, World!"}
//   POST /echo -> the request body, streamed back
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { request } from "node:http";
import { createServer } from "node:net";
import path from "node:path";

const node = process.execPath;

/** `baseline` is what ratios are computed against; `ceiling` is the native limit. */
export const SERVERS = [
  {
    id: "peregrine",
    label: "peregrine (native)",
    role: "subject",
    command: (root, port) => ({
      cmd: node,
      args: [path.join(root, "examples/hello/dist/main.js")],
      env: { PEREGRINE_URLS: `http://127.0.0.1:${port}` },
    }),
    prepare: (root) =>
      existsSync(path.join(root, "examples/hello/dist/main.js"))
        ? undefined
        : "examples/hello/dist/main.js is missing: run `npm run build` first.",
  },
  {
    id: "rust",
    label: "pure Rust (ceiling)",
    role: "ceiling",
    command: (root, port) => ({
      cmd: path.join(root, "target/release/examples/hello"),
      args: [],
      env: { PEREGRINE_URLS: `http://127.0.0.1:${port}` },
    }),
    prepare: (root) => {
      const build = spawnSync("cargo", ["build", "--release", "-p", "peregrine-core", "--example", "hello"], {
        cwd: root,
        stdio: ["ignore", "ignore", "pipe"],
        encoding: "utf8",
      });
      const binary = path.join(root, "target/release/examples/hello");
      if (build.status === 0) return undefined;
      const why = (build.stderr ?? String(build.error)).trim().split("\n").slice(-3).join(" / ");
      return existsSync(binary)
        ? `cargo build of the Rust example failed (${why}); measuring the binary already in target/release.`
        : `cargo build of the Rust example failed and no binary exists: ${why}`;
    },
  },
  { id: "node-http", label: "node:http", role: "baseline", script: "node-http.mjs" },
  { id: "fastify", label: "fastify", role: "peer", script: "fastify.mjs" },
  { id: "hono", label: "hono (@hono/node-server)", role: "peer", script: "hono.mjs" },
  { id: "express", label: "express", role: "peer", script: "express.mjs" },
].map((server) =>
  server.script === undefined
    ? server
    : {
        ...server,
        command: (root, port) => ({
          cmd: node,
          args: [path.join(root, "bench/servers", server.script)],
          env: { PORT: String(port) },
        }),
      },
);

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

/** One HTTP/1.1 exchange on a fresh connection; resolves with status, headers and body. */
export function fetchOnce(url, { method = "GET", body, headers = {}, timeoutMs = 2000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** Checks that a server answers the three routes as examples/hello does; returns problems. */
export async function checkRoutes(base) {
  const problems = [];
  const text = await fetchOnce(`${base}/`);
  if (text.status !== 200 || text.body.toString() !== "Hello, World!") {
    problems.push(`GET / answered ${text.status} ${JSON.stringify(text.body.toString().slice(0, 60))}`);
  }
  if (!String(text.headers["content-type"]).toLowerCase().startsWith("text/plain")) {
    problems.push(`GET / has content-type ${text.headers["content-type"]}`);
  }
  const json = await fetchOnce(`${base}/json`);
  let parsed;
  try {
    parsed = JSON.parse(json.body.toString());
  } catch {
    parsed = undefined;
  }
  if (json.status !== 200 || parsed?.message !== "Hello, World!") {
    problems.push(`GET /json answered ${json.status} ${JSON.stringify(json.body.toString().slice(0, 60))}`);
  }
  const payload = Buffer.alloc(256 * 1024, "peregrine ");
  const echo = await fetchOnce(`${base}/echo`, {
    method: "POST",
    body: payload,
    headers: { "content-type": "application/octet-stream" },
  });
  if (echo.status !== 200 || !echo.body.equals(payload)) {
    problems.push(`POST /echo answered ${echo.status} with ${echo.body.length} of ${payload.length} bytes`);
  }
  return problems;
}

/**
 * Starts a server (pinned when `pin` is a taskset prefix), waits until GET / answers,
 * and returns a handle with its base URL and a stop() function.
 */
export async function startServer(server, root, pin, { readyTimeoutMs = 20_000 } = {}) {
  const port = await freePort();
  const { cmd, args, env } = server.command(root, port);
  const argv = [...pin, cmd, ...args];
  const child = spawn(argv[0], argv.slice(1), {
    cwd: root,
    env: { ...process.env, PEREGRINE_IO_THREADS: "", NODE_ENV: "production", ...env },
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

  const base = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (exited === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await exit;
      clearTimeout(timer);
    }
  };
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exited !== null) {
      throw new Error(`${server.label} exited before it was ready (${JSON.stringify(exited)}):\n${output}`);
    }
    try {
      const res = await fetchOnce(`${base}/`, { timeoutMs: 500 });
      if (res.status === 200) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${server.label} did not answer GET / on ${base} within ${readyTimeoutMs} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { server, base, port, pid: child.pid, stop, output: () => output };
}
