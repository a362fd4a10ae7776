// nginx and Apache httpd from Debian in front of the app, over a TCP and a unix socket
// upstream, with the site configurations docs/deploy-nginx.md and docs/deploy-apache.md
// show. The proxies end TLS; the app, on the native and on the node server, uses
// useForwardedHeaders() with its loopback default. The client's address, scheme and
// Host must arrive, and 200 MB bodies must stream through both ways (native server)
// without either proxy buffering them whole.
import fs from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { type ServerName, silentLogger, WebApplication } from "peregrine";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  hasOpenssl,
  makeCertificates,
  removeCertificates,
  requireTool,
  type TestCertificates,
} from "../support/certs.js";
import { APACHE, installed, NGINX, type RunningProxy, siteTemplate, startApache, startNginx } from "./proxy-process.js";

const MB = 1024 * 1024;
const BIG = 200 * MB;
const CHUNK = 256 * 1024;

const ready =
  requireTool("openssl", hasOpenssl()) &&
  requireTool("nginx (apt-get install nginx)", installed(NGINX)) &&
  requireTool("apache2 (apt-get install apache2)", installed(APACHE));

let dir: string;
let certs: TestCertificates;
/** An app on one server, listening on loopback TCP and on a unix socket. */
interface Upstream {
  app: WebApplication;
  socketPath: string;
  tcpUrl: string;
}
const upstreams = new Map<ServerName, Upstream>();

/** The app's view of the last upload and download, for the streaming assertions. */
const progress = { uploadFirstChunkAt: 0, downloadWritten: 0 };

async function startApp(server: ServerName): Promise<Upstream> {
  const socketPath = path.join(dir, `${server}.sock`);
  const app = WebApplication.create({
    server,
    urls: ["http://127.0.0.1:0", `unix:${socketPath}`],
    limits: { maxRequestBodySize: null },
    logger: silentLogger,
  });
  app.useForwardedHeaders();
  app.mapGet("/whoami", (ctx) => ({
    remoteAddress: ctx.connection.remoteAddress,
    scheme: ctx.request.scheme,
    host: ctx.request.host,
  }));
  app.mapPost("/upload", async (ctx) => {
    let bytes = 0;
    for await (const chunk of ctx.request.body) {
      if (bytes === 0) progress.uploadFirstChunkAt = performance.now();
      bytes += chunk.byteLength;
    }
    return { bytes };
  });
  app.mapGet("/download", async (ctx) => {
    const chunk = Buffer.alloc(CHUNK, 0x61);
    progress.downloadWritten = 0;
    ctx.response.contentType = "application/octet-stream";
    ctx.response.headers.set("content-length", String(BIG));
    while (progress.downloadWritten < BIG) {
      await ctx.response.write(chunk);
      progress.downloadWritten += CHUNK;
    }
  });
  await app.start();
  fs.chmodSync(socketPath, 0o666);
  return { app, socketPath, tcpUrl: app.urls[0] as string };
}

beforeAll(async () => {
  if (!ready) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "peregrine-proxies-"));
  // Proxy workers run as another user when the tests run as root: they must reach the socket.
  fs.chmodSync(dir, 0o755);
  certs = makeCertificates();
  for (const server of ["native", "node"] as const) upstreams.set(server, await startApp(server));
}, 30_000);

afterAll(async () => {
  for (const { app } of upstreams.values()) await app.stop();
  removeCertificates(certs);
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
});

interface Reply {
  status: number;
  body: string;
}

/** One HTTPS request to the proxy, from `localAddress`, trusting the test CA. */
function request(
  port: number,
  options: { method?: string; path: string; localAddress?: string; headers?: Record<string, string | number> },
  body?: (req: import("node:http").ClientRequest) => void,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        port,
        method: options.method ?? "GET",
        path: options.path,
        localAddress: options.localAddress,
        headers: options.headers,
        // The certificate names localhost; the Host header may name another site.
        servername: "localhost",
        ca: certs.ca.cert,
        agent: false,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          text += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("error", reject);
    req.setTimeout(30_000, () => req.destroy(new Error("timed out")));
    if (body === undefined) req.end();
    else body(req);
  });
}

/** Uploads BIG bytes; resolves with what the app counted, and when the client finished sending. */
async function upload(port: number): Promise<{ bytes: number; sentAt: number }> {
  let sentAt = 0;
  const reply = await request(
    port,
    { method: "POST", path: "/upload", headers: { "content-length": BIG, "content-type": "application/octet-stream" } },
    (req) => {
      const chunk = Buffer.alloc(CHUNK, 0x62);
      let sent = 0;
      const pump = () => {
        while (sent < BIG) {
          sent += CHUNK;
          if (!req.write(chunk)) {
            req.once("drain", pump);
            return;
          }
        }
        sentAt = performance.now();
        req.end();
      };
      pump();
    },
  );
  expect(reply.status).toBe(200);
  return { bytes: (JSON.parse(reply.body) as { bytes: number }).bytes, sentAt };
}

/**
 * Downloads BIG bytes, pausing after the first 1 MB: while the client reads nothing, the
 * app must stall too (the proxy holds what fits in its socket buffers, not the body).
 */
function download(port: number): Promise<{ bytes: number; writtenWhilePaused: number }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: "127.0.0.1", port, path: "/download", ca: certs.ca.cert, agent: false }, (res) => {
      let bytes = 0;
      let writtenWhilePaused = -1;
      res.on("data", (d: Buffer) => {
        bytes += d.byteLength;
        if (writtenWhilePaused < 0 && bytes >= MB) {
          writtenWhilePaused = 0;
          res.pause();
          setTimeout(() => {
            writtenWhilePaused = progress.downloadWritten;
            res.resume();
          }, 1000);
        }
      });
      res.on("end", () => resolve({ bytes, writtenWhilePaused }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.setTimeout(30_000, () => req.destroy(new Error("timed out")));
  });
}

type Start = (
  dir: string,
  upstream: string,
  tls: { certificate: string; certificateKey: string },
) => Promise<RunningProxy>;

/** How each proxy names an upstream over TCP and over a unix socket. */
const proxies: { name: string; start: Start; tcp: (u: Upstream) => string; unix: (u: Upstream) => string }[] = [
  {
    name: "nginx",
    start: startNginx,
    tcp: (u) => new URL(u.tcpUrl).host,
    unix: (u) => `unix:${u.socketPath}`,
  },
  {
    name: "Apache httpd",
    start: startApache,
    tcp: (u) => `${u.tcpUrl}/`,
    unix: (u) => `unix:${u.socketPath}|http://localhost/`,
  },
];

describe.runIf(ready).each(proxies)("behind $name", ({ name, start, tcp, unix }) => {
  describe.each([
    ["native", "a TCP upstream", tcp],
    ["native", "a unix socket upstream", unix],
    ["node", "a TCP upstream", tcp],
    ["node", "a unix socket upstream", unix],
  ] as const)("to the %s server over %s", (server, _, upstream) => {
    let proxy: RunningProxy;
    beforeAll(async () => {
      const proxyDir = fs.mkdtempSync(path.join(dir, `${name.split(" ")[0]}-`));
      fs.chmodSync(proxyDir, 0o755);
      proxy = await start(proxyDir, upstream(upstreams.get(server) as Upstream), {
        certificate: certs.files["server.cert"] as string,
        certificateKey: certs.files["server.key"] as string,
      });
    }, 15_000);
    afterAll(() => proxy?.stop());

    it("passes on the client's address, the scheme and the Host", async () => {
      for (const localAddress of ["127.0.0.1", "127.0.0.2"]) {
        const reply = await request(proxy.port, {
          path: "/whoami",
          localAddress,
          // A client's own claims are kept apart from what the proxy adds.
          headers: { host: "shop.example.test", "x-forwarded-for": "203.0.113.66" },
        });
        expect(reply.status).toBe(200);
        expect(JSON.parse(reply.body)).toEqual({
          remoteAddress: localAddress,
          scheme: "https",
          host: "shop.example.test",
        });
      }
    });

    // Streaming is the proxies' part, shown once per upstream: on the native server.
    if (server !== "native") return;
    it("streams a 200 MB upload and a 200 MB download through", async () => {
      const up = await upload(proxy.port);
      expect(up.bytes).toBe(BIG);
      // A proxy that buffered the body whole would send its first byte after the last one arrived.
      expect(progress.uploadFirstChunkAt).toBeLessThan(up.sentAt);

      const down = await download(proxy.port);
      expect(down.bytes).toBe(BIG);
      // A buffering proxy would take the whole body from the app while the client waits.
      expect(down.writtenWhilePaused).toBeGreaterThan(0);
      expect(down.writtenWhilePaused).toBeLessThan(64 * MB);
    }, 60_000);
  });
});

describe("the deploy docs", () => {
  it.each([
    ["nginx", "docs/deploy-nginx.md"],
    ["apache", "docs/deploy-apache.md"],
  ] as const)("show the tested %s site configuration verbatim", (proxy, doc) => {
    const text = fs.readFileSync(path.join(__dirname, "../..", doc), "utf8");
    expect(text).toContain(siteTemplate(proxy).trim());
  });
});
