import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import tls from "node:tls";
import { ErrorCodes, PeregrineError } from "../../errors.js";
import type { ITlsConnectionFeature } from "../../features/index.js";
import { type NativeTlsOptions, type TlsOptions, toNativeTlsOptions } from "../../server/tls.js";

/** NodeServer's TLS state, built from the `tls` option and shared by its https endpoints. */
export interface NodeTlsSettings {
  native: NativeTlsOptions;
  /** The contexts by SNI name, read at handshake time; swapped whole on reload. */
  contexts: SniContexts;
}

interface SniContexts {
  default: tls.SecureContext | undefined;
  exact: Map<string, tls.SecureContext>;
  wildcard: Map<string, tls.SecureContext>;
}

/**
 * The native core's policy (rustls): TLS 1.3, and TLS 1.2 with forward-secret AEAD
 * suites only. OpenSSL's names; TLS 1.3 suites are listed apart by OpenSSL and all allowed.
 */
const CIPHERS = [
  "TLS_AES_256_GCM_SHA384",
  "TLS_AES_128_GCM_SHA256",
  "TLS_CHACHA20_POLY1305_SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");

let NO_CERTIFICATE: tls.SecureContext | undefined;

function tlsError(code: string, endpoints: string, problem: string, cause?: unknown): PeregrineError {
  return new PeregrineError(code, `TLS for ${endpoints}: ${problem}`, cause === undefined ? undefined : { cause });
}

/** Checks a certificate chain and key the way the native core does, with the same codes. */
function secureContext(
  cert: Buffer,
  key: Buffer,
  ca: Buffer | undefined,
  certLabel: string,
  keyLabel: string,
  endpoints: string,
): tls.SecureContext {
  const pem = cert.toString("utf8");
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (blocks === null) {
    throw tlsError(ErrorCodes.TLS_INVALID_CERTIFICATE, endpoints, `${certLabel} holds no "BEGIN CERTIFICATE" block`);
  }
  const now = Date.now();
  let leaf: X509Certificate | undefined;
  for (const [i, block] of blocks.entries()) {
    const which = i === 0 ? certLabel : `certificate ${i + 1} of the chain in ${certLabel}`;
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(block);
    } catch (error) {
      throw tlsError(
        ErrorCodes.TLS_INVALID_CERTIFICATE,
        endpoints,
        `${which} is not a valid X.509 certificate: ${(error as Error).message}`,
        error,
      );
    }
    if (Date.parse(x509.validTo) < now) {
      throw tlsError(ErrorCodes.TLS_CERTIFICATE_EXPIRED, endpoints, `${which} expired on ${x509.validTo}: renew it`);
    }
    leaf ??= x509;
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw tlsError(
      ErrorCodes.TLS_INVALID_KEY,
      endpoints,
      `${keyLabel} is not a PEM private key (PKCS#8, PKCS#1 or SEC1): ${(error as Error).message}`,
      error,
    );
  }
  if (leaf !== undefined && !leaf.checkPrivateKey(privateKey)) {
    throw tlsError(
      ErrorCodes.TLS_KEY_MISMATCH,
      endpoints,
      `${keyLabel} is not the private key of the certificate in ${certLabel}`,
    );
  }
  try {
    return tls.createSecureContext({ cert, key, ciphers: CIPHERS, ...(ca !== undefined ? { ca } : {}) });
  } catch (error) {
    throw tlsError(
      ErrorCodes.TLS_INVALID_CERTIFICATE,
      endpoints,
      `${certLabel} cannot be used: ${(error as Error).message}`,
      error,
    );
  }
}

function checkCa(ca: Buffer, endpoints: string): void {
  const blocks = ca.toString("utf8").match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (blocks === null)
    throw tlsError(ErrorCodes.TLS_INVALID_CA, endpoints, 'tls.ca is not valid PEM: no "BEGIN CERTIFICATE" block');
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (error) {
      throw tlsError(ErrorCodes.TLS_INVALID_CA, endpoints, `tls.ca: ${(error as Error).message}`, error);
    }
  }
}

/** Builds the certificate set: the default certificate plus SNI entries, exact and wildcard. */
function buildContexts(native: NativeTlsOptions, endpoints: string): SniContexts {
  const contexts: SniContexts = { default: undefined, exact: new Map(), wildcard: new Map() };
  if (native.cert !== undefined && native.key !== undefined) {
    contexts.default = secureContext(native.cert, native.key, native.ca, "tls.cert", "tls.key", endpoints);
  }
  for (const [i, name] of native.sniNames.entries()) {
    const label = `tls.sni["${name}"]`;
    const lower = name.toLowerCase();
    const parent = lower.startsWith("*.") ? lower.slice(2) : undefined;
    const host = parent ?? lower;
    if (host === "" || host.includes("*") || host.startsWith(".") || host.endsWith(".")) {
      throw tlsError(
        ErrorCodes.INVALID_OPTION,
        endpoints,
        `${label} is not a host name: use "api.example.test" or "*.example.test"`,
      );
    }
    const pair = native.sniCertificates[i] as { cert: Buffer; key: Buffer };
    const context = secureContext(pair.cert, pair.key, native.ca, `${label}.cert`, `${label}.key`, endpoints);
    (parent === undefined ? contexts.exact : contexts.wildcard).set(host, context);
  }
  return contexts;
}

/** The context for an SNI name: exact match, then a wildcard one label up, then the default. */
function pick(contexts: SniContexts, serverName: string | undefined): tls.SecureContext | undefined {
  if (serverName !== undefined && serverName !== "") {
    const name = serverName.toLowerCase();
    const exact = contexts.exact.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf(".");
    if (dot > 0) {
      const wildcard = contexts.wildcard.get(name.slice(dot + 1));
      if (wildcard !== undefined) return wildcard;
    }
  }
  return contexts.default;
}

/**
 * Checks the `tls` option the way the native core does: every certificate up front
 * (PEM, key match, expiry), with the same error codes.
 */
export function nodeTlsSettings(options: TlsOptions, endpoints: string): NodeTlsSettings {
  const native = toNativeTlsOptions(options);
  const mode = native.clientCertificateMode;
  if (mode !== "none") {
    if (native.ca === undefined) {
      throw tlsError(
        ErrorCodes.INVALID_OPTION,
        endpoints,
        `tls.clientCertificateMode is "${mode}" but tls.ca is not set: give the PEM roots client certificates must chain to`,
      );
    }
    checkCa(native.ca, endpoints);
  }
  return { native, contexts: buildContexts(native, endpoints) };
}

/** The default context's options: for clients that send no SNI, or one no entry matches. */
function defaultContextOptions(native: NativeTlsOptions): tls.SecureContextOptions {
  return {
    ...(native.cert !== undefined ? { cert: native.cert, key: native.key } : {}),
    ...(native.ca !== undefined ? { ca: native.ca } : {}),
    ciphers: CIPHERS,
  };
}

/** Options for a secure server (node:https, node:http2) of these settings; SNI reads `settings` at each handshake. */
export function secureServerOptions(settings: NodeTlsSettings): tls.TlsOptions {
  const mode = settings.native.clientCertificateMode;
  return {
    ...defaultContextOptions(settings.native),
    minVersion: "TLSv1.2",
    ciphers: CIPHERS,
    requestCert: mode !== "none",
    // "allow" takes connections without a certificate; refusesPeer() closes those with a bad one.
    rejectUnauthorized: mode === "require",
    SNICallback: (serverName, callback) => {
      const context = pick(settings.contexts, serverName);
      // A context without a certificate makes OpenSSL fail the handshake with an alert, as rustls does.
      callback(null, context ?? (NO_CERTIFICATE ??= tls.createSecureContext({ ciphers: CIPHERS })));
    },
  };
}

/** Swaps a running server's certificate set; handshakes from now on use `next`. */
export function applyTls(server: tls.Server, settings: NodeTlsSettings, next: NodeTlsSettings): void {
  settings.native = next.native;
  settings.contexts = next.contexts;
  server.setSecureContext(defaultContextOptions(next.native));
  const mode = next.native.clientCertificateMode;
  const s = server as tls.Server & { requestCert: boolean; rejectUnauthorized: boolean };
  s.requestCert = mode !== "none";
  s.rejectUnauthorized = mode === "require";
}

/** ITlsConnectionFeature over a TLS socket (or an HTTP/2 session's socket proxy). */
export class NodeTlsConnection implements ITlsConnectionFeature {
  readonly protocol: string;
  readonly cipherSuite: string;
  readonly alpnProtocol: string | undefined;
  readonly serverName: string | undefined;
  readonly #raw: Buffer | undefined;
  #pem: string | undefined;

  constructor(socket: tls.TLSSocket) {
    this.protocol = socket.getProtocol() ?? "";
    this.cipherSuite = socket.getCipher()?.standardName ?? "";
    this.alpnProtocol = typeof socket.alpnProtocol === "string" ? socket.alpnProtocol : undefined;
    const name = (socket as tls.TLSSocket & { servername?: string | false }).servername;
    this.serverName = typeof name === "string" && name !== "" ? name : undefined;
    const peer = socket.getPeerCertificate();
    this.#raw = peer !== null && typeof peer === "object" && Buffer.isBuffer(peer.raw) ? peer.raw : undefined;
  }

  get clientCertificate(): string | undefined {
    if (this.#raw === undefined) return undefined;
    if (this.#pem === undefined) {
      const base64 = this.#raw.toString("base64").replace(/.{64}/g, "$&\n");
      this.#pem = `-----BEGIN CERTIFICATE-----\n${base64}${base64.endsWith("\n") ? "" : "\n"}-----END CERTIFICATE-----\n`;
    }
    return this.#pem;
  }
}

/** In "allow" mode node cannot reject a bad certificate in the handshake; this closes such connections. */
export function refusesPeer(settings: NodeTlsSettings, socket: tls.TLSSocket): boolean {
  if (settings.native.clientCertificateMode !== "allow" || socket.authorized) return false;
  const peer = socket.getPeerCertificate();
  return peer !== null && typeof peer === "object" && Buffer.isBuffer(peer.raw);
}
