// Runs nginx and Apache httpd from Debian as reverse proxies for the tests: a generated
// configuration in a temp directory around the documented site configuration
// (nginx-site.conf, apache-site.conf, shown verbatim in docs/deploy-*.md), on a free
// loopback port, in the foreground, stopped by the test.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";

export const NGINX = "/usr/sbin/nginx";
export const APACHE = "/usr/sbin/apache2";
const APACHE_MODULES = "/usr/lib/apache2/modules";

/** What the site configuration leaves open: where to listen, the app, the certificate. */
export interface SiteValues {
  listen: string;
  upstream: string;
  certificate: string;
  certificateKey: string;
}

export interface RunningProxy {
  port: number;
  stop(): Promise<void>;
}

const here = path.dirname(new URL(import.meta.url).pathname);

/** The documented site configuration of a proxy, with its placeholders. */
export function siteTemplate(proxy: "nginx" | "apache"): string {
  return fs.readFileSync(path.join(here, `${proxy}-site.conf`), "utf8");
}

export function render(template: string, values: object): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    const value = (values as Record<string, string | undefined>)[name];
    if (value === undefined) throw new Error(`no value for {{${name}}}`);
    return value;
  });
}

/** A port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Workers started by root drop to this user; it must reach the app's unix socket. */
const isRoot = process.getuid?.() === 0;
const WORKER_USER = "www-data";

/** Starts nginx in the foreground in `dir` with the site configuration for `values`. */
export async function startNginx(dir: string, upstream: string, tls: Omit<SiteValues, "listen" | "upstream">) {
  const port = await freePort();
  const site = render(siteTemplate("nginx"), { ...tls, upstream, listen: `127.0.0.1:${port}` });
  const conf = path.join(dir, "nginx.conf");
  fs.writeFileSync(
    conf,
    [
      isRoot ? `user ${WORKER_USER};` : "",
      "worker_processes 1;",
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log warn;`,
      "events { worker_connections 256; }",
      "http {",
      "  access_log off;",
      ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `  ${t}_temp_path ${dir}/${t}_temp;`),
      site,
      "}",
    ].join("\n"),
  );
  const child = spawn(NGINX, ["-c", conf, "-p", dir, "-g", "daemon off;"], { stdio: ["ignore", "pipe", "pipe"] });
  return running(child, port, path.join(dir, "error.log"));
}

/** Starts Apache httpd in the foreground in `dir` with the site configuration for `values`. */
export async function startApache(dir: string, upstream: string, tls: Omit<SiteValues, "listen" | "upstream">) {
  const port = await freePort();
  const site = render(siteTemplate("apache"), { ...tls, upstream, listen: `127.0.0.1:${port}` });
  const modules = ["mpm_event", "authz_core", "headers", "proxy", "proxy_http", "ssl", "socache_shmcb"];
  const conf = path.join(dir, "httpd.conf");
  fs.writeFileSync(
    conf,
    [
      `ServerRoot "${dir}"`,
      "ServerName localhost",
      `Listen 127.0.0.1:${port}`,
      `PidFile ${dir}/httpd.pid`,
      `DefaultRuntimeDir ${dir}`,
      `ErrorLog ${dir}/error.log`,
      "LogLevel warn",
      isRoot ? `User ${WORKER_USER}\nGroup ${WORKER_USER}` : "",
      ...modules.map((m) => `LoadModule ${m}_module ${APACHE_MODULES}/mod_${m}.so`),
      "StartServers 1",
      "ServerLimit 1",
      "ThreadsPerChild 32",
      "MaxRequestWorkers 32",
      site,
    ].join("\n"),
  );
  const child = spawn(APACHE, ["-f", conf, "-DFOREGROUND"], { stdio: ["ignore", "pipe", "pipe"] });
  return running(child, port, path.join(dir, "error.log"));
}

/** Waits until the proxy accepts connections (10 s at most); it fails with its log if it exits. */
async function running(child: ChildProcess, port: number, log: string): Promise<RunningProxy> {
  let output = "";
  child.stdout?.on("data", (d: Buffer) => {
    output += d;
  });
  child.stderr?.on("data", (d: Buffer) => {
    output += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const failure = () => {
    const logText = fs.existsSync(log) ? fs.readFileSync(log, "utf8") : "";
    return new Error(`${child.spawnargs.join(" ")} did not start:\n${output}\n${logText}`);
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw failure();
    if (await accepts(port)) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw failure();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** True when the proxy's binary is installed (Debian: apt-get install nginx apache2). */
export function installed(binary: string): boolean {
  try {
    execFileSync(binary, ["-v"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
