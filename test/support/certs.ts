// Certificates made at test time with the openssl CLI: a CA, server certificates for
// 127.0.0.1 / localhost and the SNI names, a client certificate, and an expired one.
// Nothing here is committed; each test run gets fresh keys in a temp directory.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export interface Pair {
  cert: string;
  key: string;
}

export interface TestCertificates {
  dir: string;
  ca: Pair;
  /** CN=localhost, SAN 127.0.0.1, localhost: the default certificate. */
  server: Pair;
  /** SAN api.example.test. */
  api: Pair;
  /** SAN *.example.test. */
  wildcard: Pair;
  /** A second default certificate, for reload tests. */
  reloaded: Pair;
  /** An RSA key in PKCS#1 form, an EC key in SEC1 form, both for the default names. */
  rsaPkcs1: Pair;
  ecSec1: Pair;
  /** Issued by `ca`, for clientAuth. */
  client: Pair;
  /** Issued by a CA the server does not trust. */
  strangerClient: Pair;
  /** Expired in 2020. */
  expired: Pair;
  /** Paths of the PEM files, for CLI clients. */
  files: Record<string, string>;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

export function hasOpenssl(): boolean {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Makes every certificate the TLS tests use; takes about a second. */
export function makeCertificates(): TestCertificates {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "peregrine-tls-"));
  const files: Record<string, string> = {};
  const read = (name: string): Pair => {
    files[`${name}.cert`] = path.join(dir, `${name}.crt`);
    files[`${name}.key`] = path.join(dir, `${name}.key`);
    return {
      cert: fs.readFileSync(path.join(dir, `${name}.crt`), "utf8"),
      key: fs.readFileSync(path.join(dir, `${name}.key`), "utf8"),
    };
  };
  const ca = (name: string) => {
    openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${name}.sec1`], dir);
    openssl(["pkcs8", "-topk8", "-nocrypt", "-in", `${name}.sec1`, "-out", `${name}.key`], dir);
    openssl(
      [
        "req",
        "-x509",
        "-new",
        "-key",
        `${name}.key`,
        "-subj",
        `/CN=Peregrine Test ${name}`,
        "-days",
        "2",
        "-sha256",
        "-out",
        `${name}.crt`,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
      ],
      dir,
    );
  };
  const issue = (
    name: string,
    issuer: string,
    san: string,
    usage: "serverAuth" | "clientAuth",
    keyKind = "ec-pkcs8",
  ) => {
    if (keyKind === "rsa-pkcs1") {
      openssl(["genrsa", "-traditional", "-out", `${name}.key`, "2048"], dir);
    } else {
      openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${name}.sec1`], dir);
      if (keyKind === "ec-sec1") fs.copyFileSync(path.join(dir, `${name}.sec1`), path.join(dir, `${name}.key`));
      else openssl(["pkcs8", "-topk8", "-nocrypt", "-in", `${name}.sec1`, "-out", `${name}.key`], dir);
    }
    openssl(["req", "-new", "-key", `${name}.key`, "-subj", `/CN=${name}`, "-out", `${name}.csr`], dir);
    fs.writeFileSync(
      path.join(dir, `${name}.ext`),
      `subjectAltName=${san}\nextendedKeyUsage=${usage}\nbasicConstraints=CA:FALSE\n`,
    );
    openssl(
      [
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        `${issuer}.crt`,
        "-CAkey",
        `${issuer}.key`,
        "-CAcreateserial",
        "-days",
        "2",
        "-sha256",
        "-extfile",
        `${name}.ext`,
        "-out",
        `${name}.crt`,
      ],
      dir,
    );
  };
  ca("ca");
  ca("stranger-ca");
  const local = "IP:127.0.0.1,DNS:localhost";
  issue("server", "ca", local, "serverAuth");
  issue("api", "ca", "DNS:api.example.test", "serverAuth");
  issue("wildcard", "ca", "DNS:*.example.test", "serverAuth");
  issue("reloaded", "ca", local, "serverAuth");
  issue("rsa", "ca", local, "serverAuth", "rsa-pkcs1");
  issue("ec", "ca", local, "serverAuth", "ec-sec1");
  issue("client", "ca", "DNS:client.example.test", "clientAuth");
  issue("stranger", "stranger-ca", "DNS:stranger.example.test", "clientAuth");
  // An expired certificate needs explicit dates, which only `openssl ca` takes.
  fs.writeFileSync(path.join(dir, "index.txt"), "");
  fs.writeFileSync(path.join(dir, "serial"), "1000\n");
  fs.writeFileSync(
    path.join(dir, "ca.cnf"),
    [
      "[ca]",
      "default_ca = test",
      "[test]",
      `dir = ${dir}`,
      "database = $dir/index.txt",
      "serial = $dir/serial",
      "new_certs_dir = $dir",
      "default_md = sha256",
      "policy = any",
      "copy_extensions = none",
      "unique_subject = no",
      "[any]",
      "commonName = supplied",
      "",
    ].join("\n"),
  );
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "expired.sec1"], dir);
  openssl(["pkcs8", "-topk8", "-nocrypt", "-in", "expired.sec1", "-out", "expired.key"], dir);
  openssl(["req", "-new", "-key", "expired.key", "-subj", "/CN=expired", "-out", "expired.csr"], dir);
  openssl(
    [
      "ca",
      "-batch",
      "-config",
      "ca.cnf",
      "-cert",
      "ca.crt",
      "-keyfile",
      "ca.key",
      "-in",
      "expired.csr",
      "-out",
      "expired.crt",
      "-startdate",
      "20200101000000Z",
      "-enddate",
      "20200102000000Z",
      "-notext",
    ],
    dir,
  );
  return {
    dir,
    ca: read("ca"),
    server: read("server"),
    api: read("api"),
    wildcard: read("wildcard"),
    reloaded: read("reloaded"),
    rsaPkcs1: read("rsa"),
    ecSec1: read("ec"),
    client: read("client"),
    strangerClient: read("stranger"),
    expired: read("expired"),
    files,
  };
}

export function removeCertificates(certs: TestCertificates | undefined): void {
  if (certs !== undefined) fs.rmSync(certs.dir, { recursive: true, force: true });
}

/** In CI a missing tool fails the test; locally the test is skipped with a message. */
export function requireTool(name: string, present: boolean): boolean {
  if (present) return true;
  if (process.env.CI === "true" || process.env.CI === "1") {
    throw new Error(
      `${name} is required in CI but was not found: install it (see .ci/run and scripts/install-tools.sh)`,
    );
  }
  console.warn(`skipping: ${name} is not installed (required in CI)`);
  return false;
}
