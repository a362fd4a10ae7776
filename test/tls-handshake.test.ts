// Failed and stalled TLS handshakes on the native server: each aborted connection is
// logged once with its reason code, connection id and address, and counted in
// NativeServer.stats, and a handshake that never completes is cut off by its time limit
// (docs/security.md "TLS handshakes").
import tls from "node:tls";
import { type NativeServer, WebApplication } from "peregrine";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  hasOpenssl,
  makeCertificates,
  removeCertificates,
  requireTool,
  type TestCertificates,
} from "./support/certs.js";
import { capturingLogger, rejections } from "./support/logger.js";
import { RawClient } from "./support/server.js";

const haveOpenssl = requireTool("openssl", hasOpenssl());
let certs: TestCertificates;
const apps: WebApplication[] = [];

beforeAll(() => {
  if (haveOpenssl) certs = makeCertificates();
});
afterAll(() => removeCertificates(certs));
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.stop()));
});

async function startTls(requestHeadersTimeout?: number) {
  const logger = capturingLogger();
  const app = WebApplication.create({
    urls: ["https://127.0.0.1:0"],
    logger,
    tls: { cert: certs.server.cert, key: certs.server.key },
    ...(requestHeadersTimeout !== undefined ? { limits: { requestHeadersTimeout } } : {}),
  });
  app.mapGet("/", () => "ok");
  apps.push(app);
  await app.start();
  const port = Number(new URL(app.urls[0] as string).port);
  return { app, logger, port, stats: () => (app.server as NativeServer).stats };
}

/** Waits until `check` holds, polling; bounded. */
async function eventually(check: () => boolean, timeoutMs = 3000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error("timed out waiting for the server to report");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Sends `bytes` on a raw TCP connection and waits for the server to close it. */
async function sendAndWaitForClose(port: number, bytes: string | Buffer): Promise<Buffer> {
  const client = await RawClient.connect(port);
  client.write(bytes);
  return client.waitForClose(5000);
}

describe.runIf(haveOpenssl)("TLS handshake failures", () => {
  it("a plaintext HTTP request: TLS_HANDSHAKE_FAILED, logged once and counted", async () => {
    const { logger, port, stats } = await startTls();
    await sendAndWaitForClose(port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    await eventually(() => rejections(logger).length > 0);
    const events = rejections(logger);
    expect(events).toHaveLength(1);
    expect(events[0]?.level).toBe("warn");
    expect(events[0]?.fields).toMatchObject({ reason: "TLS_HANDSHAKE_FAILED", status: 0, remoteAddress: "127.0.0.1" });
    expect(events[0]?.fields.connectionId).toMatch(/^[0-9A-Z]{8}$/);
    expect(events[0]?.fields.remotePort).toBeGreaterThan(0);
    expect(stats().rejections).toEqual({ TLS_HANDSHAKE_FAILED: 1 });
  });

  it("garbage bytes: TLS_HANDSHAKE_FAILED", async () => {
    const { logger, port, stats } = await startTls();
    // A record header claiming a handshake record of a version that does not exist.
    await sendAndWaitForClose(port, Buffer.from([0x16, 0x09, 0x09, 0x00, 0x05, 1, 2, 3, 4, 5]));
    await sendAndWaitForClose(port, Buffer.alloc(64, 0xff));
    await eventually(() => rejections(logger).length >= 2);
    expect(rejections(logger, "TLS_HANDSHAKE_FAILED")).toHaveLength(2);
    expect(stats().rejections).toEqual({ TLS_HANDSHAKE_FAILED: 2 });
  });

  it("a TLS 1.1 client: TLS_HANDSHAKE_FAILED, and the server serves the next client", async () => {
    const { logger, port, stats } = await startTls();
    await expect(
      new Promise((resolve, reject) => {
        const socket = tls.connect(
          {
            host: "127.0.0.1",
            port,
            minVersion: "TLSv1.1",
            maxVersion: "TLSv1.1",
            ciphers: "DEFAULT@SECLEVEL=0",
            ca: certs.ca.cert,
          },
          () => resolve(socket),
        );
        socket.once("error", reject);
      }),
    ).rejects.toThrow();
    await eventually(() => rejections(logger).length > 0);
    expect(rejections(logger, "TLS_HANDSHAKE_FAILED")).toHaveLength(1);
    expect(stats().rejections).toEqual({ TLS_HANDSHAKE_FAILED: 1 });
    const served = await fetchOk(port);
    expect(served).toBe(true);
    expect(rejections(logger)).toHaveLength(1);
  });

  it("a silent client: TLS_HANDSHAKE_TIMEOUT once requestHeadersTimeout (shorter than 10 s) passes", async () => {
    const { logger, port, stats } = await startTls(400);
    const started = performance.now();
    const client = await RawClient.connect(port);
    await client.waitForClose(5000);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(350);
    expect(elapsed).toBeLessThan(2000);
    await eventually(() => rejections(logger).length > 0);
    expect(rejections(logger)).toHaveLength(1);
    expect(rejections(logger)[0]?.fields).toMatchObject({ reason: "TLS_HANDSHAKE_TIMEOUT", status: 0 });
    expect(stats().rejections).toEqual({ TLS_HANDSHAKE_TIMEOUT: 1 });
  });

  it("a client that sends half a ClientHello and stalls: TLS_HANDSHAKE_TIMEOUT", async () => {
    const { logger, port, stats } = await startTls(400);
    const client = await RawClient.connect(port);
    // A handshake record header announcing 512 bytes, and only 3 of them.
    client.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01]));
    await client.waitForClose(5000);
    await eventually(() => rejections(logger).length > 0);
    expect(stats().rejections).toEqual({ TLS_HANDSHAKE_TIMEOUT: 1 });
  });
});

/** One GET over TLS on a fresh connection; true when it got 200 "ok". */
function fetchOk(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ca: certs.ca.cert }, () => {
      socket.write("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    });
    let data = "";
    socket.on("data", (c: Buffer) => {
      data += c.toString("latin1");
    });
    socket.once("error", reject);
    socket.once("close", () => resolve(/^HTTP\/1\.1 200 [\s\S]*\r\n\r\nok$/.test(data)));
    socket.setTimeout(5000, () => socket.destroy(new Error("timed out")));
  });
}
