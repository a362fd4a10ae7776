// The TLS workloads' certificate: a self-signed P-256 certificate for 127.0.0.1 and
// localhost, made with the openssl CLI into a temporary folder at the start of a run.
// wrk and h2load do not verify certificates, and neither do the route checks.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** Makes the certificate; returns { cert, key, remove() } (PEM file paths) or throws. */
export function makeCertificate() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "peregrine-bench-tls-"));
  const cert = path.join(dir, "cert.pem");
  const key = path.join(dir, "key.pem");
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        key,
        "-out",
        cert,
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    const why =
      error.code === "ENOENT" ? "openssl was not found (Debian package openssl)" : String(error.stderr ?? error);
    throw new Error(`could not make the TLS workloads' certificate: ${why}`);
  }
  return { cert, key, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
