import { ErrorCodes, PeregrineError } from "../errors.js";

/** PEM text, as a string or the bytes of a PEM file. */
export type Pem = string | Uint8Array;

/** A certificate chain (leaf first) and its private key, both PEM. */
export interface TlsCertificate {
  cert: Pem;
  /** PKCS#8, PKCS#1 (RSA) or SEC1 (EC). */
  key: Pem;
}

export type ClientCertificateMode = "none" | "allow" | "require";

/** The `tls` option: the certificates of every https endpoint. docs/tls.md is the reference. */
export interface TlsOptions {
  /** The default certificate chain: for clients whose SNI matches no `sni` entry, or who send none. */
  cert?: Pem;
  key?: Pem;
  /** Certificates by host name, exact ("api.example.test") or wildcard ("*.example.test"). */
  sni?: Record<string, TlsCertificate>;
  /** Whether clients are asked for a certificate. Default "none". */
  clientCertificateMode?: ClientCertificateMode;
  /** Trust roots for client certificates (PEM, one or more). Needed unless the mode is "none". */
  ca?: Pem | Pem[];
}

/** The shape the native core takes (crates/peregrine-node/src/server.rs NativeTlsOptions). */
export interface NativeTlsOptions {
  cert?: Buffer;
  key?: Buffer;
  sniNames: string[];
  sniCertificates: { cert: Buffer; key: Buffer }[];
  clientCertificateMode: ClientCertificateMode;
  ca?: Buffer;
}

const KNOWN = new Set(["cert", "key", "sni", "clientCertificateMode", "ca"]);
const MODES = new Set(["none", "allow", "require"]);

function invalid(message: string): PeregrineError {
  return new PeregrineError(ErrorCodes.INVALID_OPTION, message);
}

function pem(name: string, value: unknown): Buffer {
  if (typeof value === "string") return Buffer.from(value, "utf8");
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw invalid(`${name} must be PEM text (a string or a Buffer), not ${value === null ? "null" : typeof value}`);
}

/**
 * Checks the shape of the tls option and converts it for the core. The core checks the
 * content (PEM, key match, dates) and names the endpoint when it is wrong.
 */
export function toNativeTlsOptions(tls: TlsOptions): NativeTlsOptions {
  if (tls === null || typeof tls !== "object") throw invalid("tls must be an object with cert and key");
  for (const key of Object.keys(tls)) {
    if (!KNOWN.has(key)) throw invalid(`tls.${key} is not a TLS option (known: ${[...KNOWN].join(", ")})`);
  }
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw invalid(`tls.${tls.cert === undefined ? "cert" : "key"} is missing: give both cert and key`);
  }
  const mode = tls.clientCertificateMode ?? "none";
  if (!MODES.has(mode)) {
    throw invalid(`tls.clientCertificateMode = ${JSON.stringify(mode)} is invalid: use "none", "allow" or "require"`);
  }
  const native: NativeTlsOptions = { sniNames: [], sniCertificates: [], clientCertificateMode: mode };
  if (tls.cert !== undefined) native.cert = pem("tls.cert", tls.cert);
  if (tls.key !== undefined) native.key = pem("tls.key", tls.key);
  if (tls.sni !== undefined) {
    if (tls.sni === null || typeof tls.sni !== "object")
      throw invalid("tls.sni must be an object of host name -> { cert, key }");
    for (const [name, entry] of Object.entries(tls.sni)) {
      if (entry === null || typeof entry !== "object") throw invalid(`tls.sni["${name}"] must be { cert, key }`);
      native.sniNames.push(name);
      native.sniCertificates.push({
        cert: pem(`tls.sni["${name}"].cert`, entry.cert),
        key: pem(`tls.sni["${name}"].key`, entry.key),
      });
    }
  }
  if (tls.ca !== undefined) {
    const list = Array.isArray(tls.ca) ? tls.ca : [tls.ca];
    native.ca = Buffer.concat(list.map((c, i) => Buffer.concat([pem(`tls.ca[${i}]`, c), Buffer.from("\n")])));
  }
  if (native.cert === undefined && native.sniNames.length === 0) {
    throw invalid("tls needs a certificate: set tls.cert and tls.key, or tls.sni");
  }
  return native;
}
