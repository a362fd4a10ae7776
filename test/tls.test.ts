// TLS on the native server: certificates, SNI, client certificates, ALPN, protocol and
// cipher policy, reload, and start-up errors. Certificates are made at test time.
import { execFile } from "node:child_process";
import crypto from "node:crypto";
import http2 from "node:http2";
import https from "node:https";
import tls from "node:tls";
import { promisify } from "node:util";
import { silentLogger, WebApplication, type WebApplicationOptions } from "peregrine";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  hasOpenssl,
  makeCertificates,
  removeCertificates,
  requireTool,
  type TestCertificates,
} from "./support/certs.js";

const run = promisify(execFile);
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

/** Starts an app with one https endpoint that echoes what it knows about TLS. */
async function startTls(options: Partial<WebApplicationOptions> = {}, urls = ["https://127.0.0.1:0"]) {
  const app = WebApplication.create({
    urls,
    logger: silentLogger,
    tls: { cert: certs.server.cert, key: certs.server.key },
    ...options,
  });
  app.mapGet("/tls", (ctx) => ({
    protocol: ctx.request.protocol,
    scheme: ctx.request.scheme,
    tls:
      ctx.tls === undefined
        ? null
        : {
            protocol: ctx.tls.protocol,
            cipherSuite: ctx.tls.cipherSuite,
            alpnProtocol: ctx.tls.alpnProtocol ?? null,
            serverName: ctx.tls.serverName ?? null,
            clientCertificate: ctx.tls.clientCertificate ?? null,
          },
  }));
  apps.push(app);
  await app.start();
  const url = app.urls[0] as string;
  return { app, url, port: Number(new URL(url).port) };
}

interface Handshake {
  socket: tls.TLSSocket;
  certificate: tls.PeerCertificate;
}

/** A raw TLS handshake; rejects with the alert or error the client saw. */
function handshake(port: number, options: tls.ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ca: certs.ca.cert, ...options }, () => {
      resolve({ socket, certificate: socket.getPeerCertificate() });
    });
    socket.once("error", reject);
    socket.setTimeout(5000, () => socket.destroy(new Error("handshake timed out")));
  });
}

/** GET over HTTP/1.1 on an established TLS socket (the server speaks only after a request in TLS 1.3). */
function getOver(socket: tls.TLSSocket, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = "";
    socket.on("data", (chunk: Buffer) => {
      data += chunk.toString();
      const end = data.indexOf("\r\n\r\n");
      if (end >= 0) {
        const length = Number(/content-length: (\d+)/i.exec(data)?.[1] ?? "0");
        if (data.length >= end + 4 + length) resolve(data.slice(end + 4, end + 4 + length));
      }
    });
    socket.once("error", reject);
    socket.once("close", () => reject(new Error(`closed; received ${JSON.stringify(data)}`)));
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  });
}

function fingerprint(pem: string): string {
  return new crypto.X509Certificate(pem).fingerprint256;
}

function httpsGet(url: string, options: https.RequestOptions = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca: certs.ca.cert, agent: false, ...options }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.setTimeout(5000, () => req.destroy(new Error("request timed out")));
  });
}

describe.runIf(haveOpenssl)("TLS", () => {
  it("serves https and http side by side, with the TLS details in ctx.tls", async () => {
    const { app } = await startTls({}, ["https://127.0.0.1:0", "http://127.0.0.1:0"]);
    const [httpsUrl, httpUrl] = app.urls as [string, string];
    const secure = await httpsGet(`${httpsUrl}/tls`);
    expect(secure.status).toBe(200);
    const info = JSON.parse(secure.body);
    expect(info.scheme).toBe("https");
    expect(info.protocol).toBe("HTTP/1.1");
    expect(info.tls.protocol).toBe("TLSv1.3");
    expect(info.tls.cipherSuite).toMatch(/^TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)$/);
    expect(info.tls.clientCertificate).toBeNull();
    const plain = await fetch(`${httpUrl}/tls`);
    expect(await plain.json()).toEqual({ protocol: "HTTP/1.1", scheme: "http", tls: null });
  });

  it("negotiates h2 by ALPN and reports it", async () => {
    const { url } = await startTls();
    const session = http2.connect(url, { ca: certs.ca.cert, servername: "localhost" });
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const req = session.request({ ":path": "/tls" });
        let data = "";
        req.setEncoding("utf8");
        req.on("data", (c: string) => {
          data += c;
        });
        req.on("end", () => resolve(data));
        req.on("error", reject);
      });
      const info = JSON.parse(body);
      expect(info.protocol).toBe("HTTP/2");
      expect(info.tls.alpnProtocol).toBe("h2");
      expect(info.tls.serverName).toBe("localhost");
      // Later streams on the connection see the same details (they crossed once).
      const again = await Promise.all(
        [1, 2, 3].map(
          () =>
            new Promise<string>((resolve, reject) => {
              const req = session.request({ ":path": "/tls" });
              let data = "";
              req.setEncoding("utf8");
              req.on("data", (c: string) => {
                data += c;
              });
              req.on("end", () => resolve(data));
              req.on("error", reject);
            }),
        ),
      );
      for (const text of again) expect(JSON.parse(text).tls).toEqual(info.tls);
    } finally {
      session.close();
    }
  });

  it("negotiates TLS 1.2 with an AEAD suite when the client offers only 1.2", async () => {
    const { port } = await startTls();
    const { socket } = await handshake(port, { maxVersion: "TLSv1.2", servername: "localhost" });
    try {
      expect(socket.getProtocol()).toBe("TLSv1.2");
      const info = JSON.parse(await getOver(socket, "/tls"));
      expect(info.tls.protocol).toBe("TLSv1.2");
      expect(info.tls.cipherSuite).toMatch(
        /^TLS_ECDHE_ECDSA_WITH_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)$/,
      );
    } finally {
      socket.destroy();
    }
  });

  it("refuses TLS 1.1", async () => {
    const { port } = await startTls();
    await expect(
      handshake(port, { minVersion: "TLSv1.1", maxVersion: "TLSv1.1", ciphers: "DEFAULT@SECLEVEL=0" }),
    ).rejects.toThrow(/protocol version|handshake failure|wrong version/i);
    // The same with openssl s_client, which sends a real TLS 1.1 ClientHello.
    const result = await run(
      "openssl",
      ["s_client", "-connect", `127.0.0.1:${port}`, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
      {
        timeout: 10_000,
      },
    ).catch((e: { stdout: string; stderr: string }) => e);
    expect(`${result.stdout}${result.stderr}`).toMatch(
      /alert protocol version|no protocols available|handshake failure/i,
    );
    // No session came of it: s_client prints the protocol it tried, but no cipher.
    expect(`${result.stdout}`).toContain("Cipher is (NONE)");
  });

  it("refuses a TLS 1.2 client that offers only CBC suites", async () => {
    const { port } = await startTls();
    await expect(
      handshake(port, {
        maxVersion: "TLSv1.2",
        ciphers: "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES128-SHA:AES128-SHA:AES256-SHA",
      }),
    ).rejects.toThrow(/handshake failure|no shared cipher/i);
  });

  it("selects certificates by SNI: exact, wildcard, then the default", async () => {
    const { port } = await startTls({
      tls: {
        cert: certs.server.cert,
        key: certs.server.key,
        sni: {
          "api.example.test": certs.api,
          "*.example.test": certs.wildcard,
        },
      },
    });
    const served = async (servername?: string) => {
      const { socket, certificate } = await handshake(port, {
        ...(servername === undefined ? {} : { servername }),
        checkServerIdentity: () => undefined,
      });
      socket.destroy();
      return certificate.fingerprint256;
    };
    expect(await served("api.example.test")).toBe(fingerprint(certs.api.cert));
    expect(await served("API.Example.Test")).toBe(fingerprint(certs.api.cert));
    expect(await served("www.example.test")).toBe(fingerprint(certs.wildcard.cert));
    // One label only: a.b.example.test and example.test itself fall back to the default.
    expect(await served("a.b.example.test")).toBe(fingerprint(certs.server.cert));
    expect(await served("example.test")).toBe(fingerprint(certs.server.cert));
    expect(await served("other.test")).toBe(fingerprint(certs.server.cert));
    expect(await served(undefined)).toBe(fingerprint(certs.server.cert));
  });

  it("answers an unknown SNI name with an alert when there is no default certificate", async () => {
    const { port } = await startTls({ tls: { sni: { "api.example.test": certs.api } } });
    const { socket, certificate } = await handshake(port, { servername: "api.example.test" });
    expect(certificate.fingerprint256).toBe(fingerprint(certs.api.cert));
    socket.destroy();
    await expect(handshake(port, { servername: "other.test", checkServerIdentity: () => undefined })).rejects.toThrow(
      /alert|handshake/i,
    );
  });

  it("requires a client certificate issued by the configured CA", async () => {
    const { url, port } = await startTls({
      tls: { cert: certs.server.cert, key: certs.server.key, clientCertificateMode: "require", ca: certs.ca.cert },
    });
    // Without a certificate: TLS 1.3 reports the alert on the first read.
    await expect(httpsGet(`${url}/tls`)).rejects.toThrow(/certificate required|alert|socket hang up|ECONNRESET/i);
    // With one from a CA the server does not trust.
    await expect(
      httpsGet(`${url}/tls`, { cert: certs.strangerClient.cert, key: certs.strangerClient.key }),
    ).rejects.toThrow(/unknown ca|bad certificate|alert|socket hang up|ECONNRESET/i);
    const ok = await httpsGet(`${url}/tls`, { cert: certs.client.cert, key: certs.client.key });
    expect(ok.status).toBe(200);
    const info = JSON.parse(ok.body);
    expect(fingerprint(info.tls.clientCertificate)).toBe(fingerprint(certs.client.cert));
    expect(port).toBeGreaterThan(0);
  });

  it("allows clients with or without a certificate in allow mode", async () => {
    const { url } = await startTls({
      tls: { cert: certs.server.cert, key: certs.server.key, clientCertificateMode: "allow", ca: certs.ca.cert },
    });
    const anonymous = JSON.parse((await httpsGet(`${url}/tls`)).body);
    expect(anonymous.tls.clientCertificate).toBeNull();
    const identified = JSON.parse(
      (await httpsGet(`${url}/tls`, { cert: certs.client.cert, key: certs.client.key })).body,
    );
    expect(identified.tls.clientCertificate).toContain("-----BEGIN CERTIFICATE-----");
    expect(fingerprint(identified.tls.clientCertificate)).toBe(fingerprint(certs.client.cert));
  });

  it("loads PKCS#1 RSA and SEC1 EC keys", async () => {
    for (const pair of [certs.rsaPkcs1, certs.ecSec1]) {
      expect(pair.key).toMatch(/BEGIN (RSA|EC) PRIVATE KEY/);
      const { url } = await startTls({ tls: { cert: pair.cert, key: Buffer.from(pair.key) } });
      const { status } = await httpsGet(`${url}/tls`);
      expect(status).toBe(200);
    }
  });

  it("reloads certificates for new connections while open ones keep theirs", async () => {
    const { app, port } = await startTls();
    const before = await handshake(port, { servername: "localhost" });
    expect(before.certificate.fingerprint256).toBe(fingerprint(certs.server.cert));
    app.reloadTls({ cert: certs.reloaded.cert, key: certs.reloaded.key });
    const after = await handshake(port, { servername: "localhost" });
    expect(after.certificate.fingerprint256).toBe(fingerprint(certs.reloaded.cert));
    // The connection opened before the reload still serves requests.
    expect(JSON.parse(await getOver(before.socket, "/tls")).tls.protocol).toBe("TLSv1.3");
    expect(JSON.parse(await getOver(after.socket, "/tls")).tls.protocol).toBe("TLSv1.3");
    before.socket.destroy();
    after.socket.destroy();
    // A bad set is refused and the current one stays.
    expect(() => app.reloadTls({ cert: certs.server.cert, key: certs.api.key })).toThrow(
      expect.objectContaining({ code: "PEREGRINE_TLS_KEY_MISMATCH" }),
    );
    const still = await handshake(port, { servername: "localhost" });
    expect(still.certificate.fingerprint256).toBe(fingerprint(certs.reloaded.cert));
    still.socket.destroy();
  });

  it("fails start() with a stable code that names the endpoint and the problem", async () => {
    const cases: [WebApplicationOptions["tls"] | undefined, string, RegExp][] = [
      [undefined, "PEREGRINE_TLS_NOT_CONFIGURED", /no certificate/],
      [{ cert: "not pem", key: certs.server.key }, "PEREGRINE_TLS_INVALID_CERTIFICATE", /tls\.cert/],
      [
        { cert: certs.server.cert, key: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" },
        "PEREGRINE_TLS_INVALID_KEY",
        /tls\.key/,
      ],
      [
        { cert: certs.server.cert, key: certs.api.key },
        "PEREGRINE_TLS_KEY_MISMATCH",
        /tls\.key is not the private key/,
      ],
      [{ cert: certs.expired.cert, key: certs.expired.key }, "PEREGRINE_TLS_CERTIFICATE_EXPIRED", /expired/],
      [
        {
          cert: certs.server.cert,
          key: certs.server.key,
          sni: { "api.example.test": { cert: certs.expired.cert, key: certs.expired.key } },
        },
        "PEREGRINE_TLS_CERTIFICATE_EXPIRED",
        /tls\.sni\["api\.example\.test"\]\.cert/,
      ],
      [
        { cert: certs.server.cert, key: certs.server.key, clientCertificateMode: "require" },
        "PEREGRINE_INVALID_OPTION",
        /tls\.ca/,
      ],
    ];
    for (const [tlsOptions, code, message] of cases) {
      const app = WebApplication.create({
        urls: ["https://127.0.0.1:0"],
        logger: silentLogger,
        ...(tlsOptions === undefined ? {} : { tls: tlsOptions }),
      });
      const error = await app.start().then(
        () => undefined,
        (e: unknown) => e as { code: string; message: string },
      );
      await app.stop();
      expect(error, code).toBeDefined();
      expect(error?.code).toBe(code);
      expect(error?.message).toMatch(message);
      expect(error?.message).toContain("https://127.0.0.1:0");
    }
  });

  it("speaks h2 and http/1.1 to openssl s_client by ALPN", async () => {
    const { port } = await startTls();
    for (const alpn of ["h2", "http/1.1"]) {
      const { stdout } = await run(
        "bash",
        [
          "-c",
          `printf '' | openssl s_client -connect 127.0.0.1:${port} -servername localhost -alpn ${alpn} -CAfile ${certs.files["ca.cert"]}`,
        ],
        { timeout: 10_000 },
      );
      expect(stdout).toContain(`ALPN protocol: ${alpn}`);
      expect(stdout).toMatch(/Verify return code: 0 \(ok\)/);
    }
  });

  it("serves curl over TLS with --http2 and --http1.1", async () => {
    const haveCurl = requireTool(
      "curl",
      await run("curl", ["--version"]).then(
        () => true,
        () => false,
      ),
    );
    if (!haveCurl) return;
    const { port } = await startTls();
    const url = `https://localhost:${port}/tls`;
    const h2 = await run(
      "curl",
      ["-sS", "--http2", "--cacert", certs.files["ca.cert"] as string, "--resolve", `localhost:${port}:127.0.0.1`, url],
      { timeout: 10_000 },
    );
    expect(JSON.parse(h2.stdout).protocol).toBe("HTTP/2");
    const h1 = await run(
      "curl",
      [
        "-sS",
        "--http1.1",
        "--cacert",
        certs.files["ca.cert"] as string,
        "--resolve",
        `localhost:${port}:127.0.0.1`,
        url,
      ],
      { timeout: 10_000 },
    );
    expect(JSON.parse(h1.stdout)).toMatchObject({
      protocol: "HTTP/1.1",
      tls: { alpnProtocol: "http/1.1", serverName: "localhost" },
    });
  });
});
