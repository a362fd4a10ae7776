import { createPrivateKey, X509Certificate } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { describeValue, ErrorCodes, InvalidOptionError, PeregrineError } from "../errors.js";
import { validateOptions, type WebApplicationOptions } from "../hosting/web-application.js";
import { isLogLevel, type LogLevel } from "../logging.js";
import type { EndpointOptions } from "../server/endpoints.js";
import { type LimitsOptions, resolveLimits } from "../server/limits.js";
import type { TlsCertificate, TlsOptions } from "../server/tls.js";
import { type Configuration, type ConfigValue, describeSource } from "./configuration.js";
import { knownKey, typedValue, unknownKeyWarning } from "./schema.js";

/** What configuration sets: options for the app, the console log level, and warnings to log. */
export interface BoundConfiguration {
  /** Only the options some source set; options in code are laid over them. */
  options: WebApplicationOptions;
  logLevel: LogLevel | undefined;
  /** Unknown keys, each with a "did you mean" when one is close. */
  warnings: string[];
}

/** Where an option of WebApplicationOptions lives in configuration. */
const OPTION_KEYS: Readonly<Record<string, string>> = {
  urls: "urls",
  server: "server:kind",
  limits: "server:limits",
  shutdownTimeout: "server:shutdownTimeout",
  addServerHeader: "server:addServerHeader",
  endpoints: "server:endpoints",
};

/**
 * Turns configuration into WebApplicationOptions, checking each value with the same
 * validators the options in code go through. A bad value fails with
 * PEREGRINE_INVALID_CONFIG naming its source (file, variable or argument), the key, the
 * value and the rule.
 */
export function bindConfiguration(config: Configuration, contentRoot: string): BoundConfiguration {
  return new Binder(config, contentRoot).bind();
}

/** The last segment of a key path. */
function leaf(key: string): string {
  return key.slice(key.lastIndexOf(":") + 1);
}

class Binder {
  readonly #config: Configuration;
  readonly #contentRoot: string;
  /** Endpoint names in the order `options.endpoints` lists them, to name `endpoints[i]` in errors. */
  #endpointNames: string[] = [];

  constructor(config: Configuration, contentRoot: string) {
    this.#config = config;
    this.#contentRoot = contentRoot;
  }

  bind(): BoundConfiguration {
    const warnings: string[] = [];
    for (const entry of this.#config.entries()) {
      const warning = unknownKeyWarning(entry.key);
      if (warning !== undefined) warnings.push(`${describeSource(entry.source)}: ${warning}`);
      if (entry.source.kind === "file" && entry.key.toLowerCase() === "environment") {
        warnings.push(
          `${entry.source.name}: "environment" has no effect in a file; set PEREGRINE_ENVIRONMENT or pass --environment`,
        );
      }
    }
    const options: WebApplicationOptions = {};
    const urls = this.#urls();
    if (urls !== undefined) options.urls = urls;
    const kind = this.#value("server:kind");
    if (kind !== undefined) options.server = kind as WebApplicationOptions["server"];
    const shutdownTimeout = this.#value("server:shutdownTimeout");
    if (shutdownTimeout !== undefined) options.shutdownTimeout = shutdownTimeout as number;
    const addServerHeader = this.#value("server:addServerHeader");
    if (addServerHeader !== undefined) options.addServerHeader = addServerHeader as boolean;
    const limits = this.#limits();
    if (limits !== undefined) options.limits = limits;
    const endpoints = this.#endpoints();
    if (endpoints.length > 0) options.endpoints = endpoints;
    const tls = this.#certificate("server:certificates:default");
    const clientPolicy = this.#clientCertificates("server");
    if (clientPolicy !== undefined && tls === undefined) {
      this.#fail(
        clientPolicy.key,
        this.#value(clientPolicy.key),
        "client certificates are asked for in the TLS handshake, so this needs server:certificates:default",
      );
    }
    if (tls !== undefined) options.tls = { ...tls, ...clientPolicy?.policy };
    this.#check(() => {
      validateOptions(options);
      if (options.limits !== undefined) resolveLimits(options.limits);
    });
    return { options, logLevel: this.#logLevel(), warnings };
  }

  /** The value at a known key, a variable's or argument's string read as the key's type. */
  #value(key: string): ConfigValue | undefined {
    const entry = this.#config.entry(key);
    if (entry === undefined) return undefined;
    return typedValue(entry, knownKey(key)?.type ?? "string");
  }

  #string(key: string, rule: string): string | undefined {
    const value = this.#value(key);
    if (value !== undefined && (typeof value !== "string" || value.trim() === "")) this.#fail(key, value, rule);
    return value;
  }

  /** Fails naming the source of `key`, or of the first key below it when the section itself is not set. */
  #fail(key: string, value: ConfigValue | undefined, rule: string): never {
    const entry = this.#config.entry(key) ?? this.#config.getSection(key).entries()[0];
    const where = entry === undefined ? "configuration" : describeSource(entry.source);
    const what = value === undefined ? `${key} is missing` : `${key} = ${describeValue(value)} is invalid`;
    throw new PeregrineError(ErrorCodes.INVALID_CONFIG, `${where}: ${what}: ${rule}`);
  }

  /** Runs an options validator and re-words its error for the configuration key the value came from. */
  #check(validate: () => void): void {
    try {
      validate();
    } catch (error) {
      if (!(error instanceof InvalidOptionError)) throw error;
      const key = this.#keyOf(error.option);
      this.#fail(key, this.#config.entry(key)?.value ?? (error.value as ConfigValue | undefined), error.rule);
    }
  }

  /** `limits.http2.maxFrameSize` -> `server:limits:http2:maxFrameSize`; `endpoints[1].protocols` -> its name. */
  #keyOf(option: string): string {
    const [head = "", ...rest] = option
      .replace(/\[(\d+)\]/g, (_, i: string) => `.${this.#endpointNames[Number(i)]}`)
      .split(".");
    return [OPTION_KEYS[head] ?? head, ...rest].join(":");
  }

  #urls(): string[] | undefined {
    const section = this.#config.getSection("urls");
    const children = section.getChildren();
    if (children.length === 0 || section.ownValueWins()) {
      const list = this.#string("urls", 'expected URLs separated by ";", such as "http://127.0.0.1:5000"');
      return list
        ?.split(";")
        .map((u) => u.trim())
        .filter((u) => u !== "");
    }
    return children
      .sort((a, b) => Number(a.key) - Number(b.key))
      .map((child) => this.#string(`urls:${child.key}`, 'expected a URL such as "http://127.0.0.1:5000"') as string);
  }

  /**
   * `server:limits` as a LimitsOptions holding only the limits some source set. Unknown
   * keys were warned about and are left out, so they do not fail the limits validator.
   */
  #limits(): LimitsOptions | undefined {
    const limits: Record<string, unknown> = {};
    for (const child of this.#config.getSection("server:limits").getChildren()) {
      const nested = child.getChildren();
      if (nested.length === 0 || child.ownValueWins()) {
        const known = knownKey(child.path);
        if (known !== undefined) limits[leaf(known.path)] = this.#value(child.path);
        continue;
      }
      // The section is named as its known fields spell it (`http2`, `minRequestBodyDataRate`).
      let section: string | undefined;
      const fields: Record<string, unknown> = {};
      for (const field of nested) {
        const known = knownKey(field.path);
        if (known === undefined) continue;
        section = known.path.split(":")[2];
        fields[leaf(known.path)] = this.#value(field.path);
      }
      if (section !== undefined) limits[section] = fields;
    }
    return Object.keys(limits).length === 0 ? undefined : (limits as LimitsOptions);
  }

  #endpoints(): EndpointOptions[] {
    const endpoints: EndpointOptions[] = [];
    for (const section of this.#config.getSection("server:endpoints").getChildren()) {
      const key = `server:endpoints:${section.key}`;
      const url = this.#string(`${key}:url`, 'expected a URL such as "https://127.0.0.1:5001"');
      if (url === undefined) this.#fail(`${key}:url`, undefined, "every endpoint needs a url");
      const endpoint: EndpointOptions = { url };
      const protocols = this.#value(`${key}:protocols`);
      if (protocols !== undefined) endpoint.protocols = protocols as EndpointOptions["protocols"];
      const tls = this.#endpointTls(key);
      if (tls !== undefined) endpoint.tls = tls;
      this.#endpointNames.push(section.key);
      endpoints.push(endpoint);
    }
    return endpoints;
  }

  /** An endpoint's own certificate and SNI map, or undefined when it uses the default. */
  #endpointTls(endpointKey: string): TlsOptions | undefined {
    const tls: TlsOptions = {};
    const own = this.#certificate(`${endpointKey}:certificate`);
    if (own !== undefined) Object.assign(tls, own);
    const sni = this.#config.getSection(`${endpointKey}:sni`).getChildren();
    if (sni.length > 0) {
      tls.sni = {};
      for (const host of sni) {
        const pair = this.#certificate(`${endpointKey}:sni:${host.key}:certificate`);
        if (pair === undefined)
          this.#fail(`${endpointKey}:sni:${host.key}:certificate`, undefined, "give path and keyPath");
        tls.sni[host.key] = pair;
      }
    }
    const clientPolicy = this.#clientCertificates(endpointKey);
    if (clientPolicy !== undefined) {
      if (tls.cert === undefined) {
        this.#fail(
          clientPolicy.key,
          this.#value(clientPolicy.key),
          `an endpoint's client-certificate settings go with its own certificate (${endpointKey}:certificate); for every endpoint, use server:clientCertificateMode`,
        );
      }
      Object.assign(tls, clientPolicy.policy);
    }
    return tls.cert === undefined && tls.sni === undefined ? undefined : tls;
  }

  /**
   * `clientCertificateMode` and `clientCertificateCa` (a PEM file of trust roots) under
   * `prefix`, with the first key that set one, for errors.
   */
  #clientCertificates(
    prefix: string,
  ): { policy: Pick<TlsOptions, "clientCertificateMode" | "ca">; key: string } | undefined {
    const modeKey = `${prefix}:clientCertificateMode`;
    const caKey = `${prefix}:clientCertificateCa`;
    const policy: Pick<TlsOptions, "clientCertificateMode" | "ca"> = {};
    const mode = this.#value(modeKey);
    if (mode !== undefined) {
      if (mode !== "none" && mode !== "allow" && mode !== "require") {
        this.#fail(modeKey, mode, 'use "none", "allow" or "require"');
      }
      policy.clientCertificateMode = mode;
    }
    const caPath = this.#string(caKey, "expected the path of a PEM file of trust roots, relative to the content root");
    if (caPath !== undefined) policy.ca = this.#pemFile(caKey, caPath, (pem) => new X509Certificate(pem));
    if (mode !== undefined && mode !== "none" && caPath === undefined) {
      this.#fail(modeKey, mode, `give ${caKey} too: the PEM file of the roots client certificates must chain to`);
    }
    if (mode === undefined && caPath === undefined) return undefined;
    return { policy, key: mode === undefined ? caKey : modeKey };
  }

  /**
   * A `{ path, keyPath }` section read from PEM files under the content root, checked here
   * so a wrong file is reported with its key rather than at listen time.
   */
  #certificate(key: string): TlsCertificate | undefined {
    if (!this.#config.has(key)) return undefined;
    const rule = "expected the path of a PEM file, relative to the content root";
    const certPath = this.#string(`${key}:path`, rule);
    const keyPath = this.#string(`${key}:keyPath`, rule);
    if (certPath === undefined)
      this.#fail(`${key}:path`, undefined, "give the certificate's PEM file with its keyPath");
    if (keyPath === undefined) this.#fail(`${key}:keyPath`, undefined, "give the private key's PEM file with its path");
    const cert = this.#pemFile(`${key}:path`, certPath, (pem) => new X509Certificate(pem));
    const privateKey = this.#pemFile(`${key}:keyPath`, keyPath, (pem) => createPrivateKey(pem));
    return { cert, key: privateKey };
  }

  #pemFile(key: string, file: string, parse: (pem: string) => unknown): string {
    const resolved = path.resolve(this.#contentRoot, file);
    let pem: string;
    try {
      pem = fs.readFileSync(resolved, "utf8");
    } catch (error) {
      this.#fail(key, file, `the file ${resolved} cannot be read (${(error as NodeJS.ErrnoException).code ?? error})`);
    }
    try {
      parse(pem);
    } catch (error) {
      this.#fail(key, file, `${resolved} is not a usable PEM file: ${(error as Error).message}`);
    }
    return pem;
  }

  #logLevel(): LogLevel | undefined {
    const level = this.#value("logging:logLevel:default");
    if (level === undefined) return undefined;
    if (typeof level !== "string" || !isLogLevel(level)) {
      this.#fail("logging:logLevel:default", level, 'use "debug", "info", "warn", "error" or "silent"');
    }
    return level;
  }
}
