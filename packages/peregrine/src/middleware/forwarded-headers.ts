import { describeValue, ErrorCodes, PeregrineError } from "../errors.js";
import { IHttpConnectionFeature } from "../features/index.js";
import type { Middleware } from "../hosting/application-builder.js";
import type { HttpContext } from "../http/context.js";
import {
  type ForwardedHop,
  formatForwarded,
  formatNode,
  type IpEndpoint,
  isValidHost,
  parseForwarded,
  parseNode,
  parseScheme,
  splitList,
} from "./forwarded-parser.js";
import {
  formatIp,
  type IpBytes,
  type IpNetwork,
  networkContains,
  parseIp,
  parseNetwork,
  sameIp,
} from "./ip-network.js";

/** What a proxy hop can tell: the client address, the scheme and the host it received. */
export type ForwardedHeader = "for" | "proto" | "host";

/** Options of `app.useForwardedHeaders()`; docs/forwarded-headers.md is the reference. */
export interface ForwardedHeadersOptions {
  /** Which details to apply. Default `["for", "proto", "host"]`. */
  forwardedHeaders?: ForwardedHeader[];
  /**
   * Addresses of proxies whose headers are trusted, e.g. `["10.0.0.5"]`. Default
   * loopback (`127.0.0.1`, `::1`) when neither this nor knownNetworks is given.
   */
  knownProxies?: string[];
  /**
   * CIDR networks of trusted proxies, e.g. `["10.0.0.0/8", "fd00::/8"]`. Default
   * loopback (`127.0.0.0/8`, `::1/128`) when neither this nor knownProxies is given.
   */
  knownNetworks?: string[];
  /** Most hops applied per request, counted from the nearest proxy; null for no limit. Default 1. */
  forwardLimit?: number | null;
}

/** The options, checked and parsed once. */
export interface ForwardedHeadersSettings {
  readonly for: boolean;
  readonly proto: boolean;
  readonly host: boolean;
  readonly knownProxies: readonly IpBytes[];
  readonly knownNetworks: readonly IpNetwork[];
  readonly forwardLimit: number;
}

const OPTION_NAMES = ["forwardedHeaders", "knownProxies", "knownNetworks", "forwardLimit"];
const HEADERS: readonly ForwardedHeader[] = ["for", "proto", "host"];
const LOOPBACK_PROXIES = ["127.0.0.1", "::1"];
const LOOPBACK_NETWORKS = ["127.0.0.0/8", "::1/128"];

function invalid(what: string): PeregrineError {
  return new PeregrineError(ErrorCodes.INVALID_FORWARDED_HEADERS_OPTION, `useForwardedHeaders(): ${what}`);
}

function stringList(name: string, value: unknown): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
    throw invalid(`${name} must be an array of strings, not ${describeValue(value)}`);
  }
  return value as string[];
}

/** Checks the options; every problem names the option and the value. */
export function resolveForwardedHeadersOptions(options: ForwardedHeadersOptions = {}): ForwardedHeadersSettings {
  if (options === null || typeof options !== "object") {
    throw invalid(`options must be an object, not ${describeValue(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!OPTION_NAMES.includes(key)) throw invalid(`"${key}" is not an option (known: ${OPTION_NAMES.join(", ")})`);
  }
  const headers = stringList("forwardedHeaders", options.forwardedHeaders ?? HEADERS);
  for (const header of headers) {
    if (!HEADERS.includes(header as ForwardedHeader)) {
      throw invalid(`forwardedHeaders has ${describeValue(header)}; use "for", "proto" or "host"`);
    }
  }
  const neitherGiven = options.knownProxies === undefined && options.knownNetworks === undefined;
  const proxies = stringList("knownProxies", options.knownProxies ?? (neitherGiven ? LOOPBACK_PROXIES : []));
  const networks = stringList("knownNetworks", options.knownNetworks ?? (neitherGiven ? LOOPBACK_NETWORKS : []));
  const limit = options.forwardLimit === undefined ? 1 : options.forwardLimit;
  if (limit !== null && !(Number.isInteger(limit) && limit >= 1)) {
    throw invalid(
      `forwardLimit must be a whole number of hops, 1 or more, or null for no limit; got ${describeValue(limit)}`,
    );
  }
  return {
    for: headers.includes("for"),
    proto: headers.includes("proto"),
    host: headers.includes("host"),
    knownProxies: proxies.map((text, i) => {
      const ip = parseIp(text);
      if (ip === undefined) throw invalid(`knownProxies[${i}] = ${describeValue(text)} is not an IP address`);
      return ip;
    }),
    knownNetworks: networks.map((text, i) => {
      const network = parseNetwork(text);
      if (network === undefined) {
        throw invalid(
          `knownNetworks[${i}] = ${describeValue(text)} is not a CIDR network such as "10.0.0.0/8" or "::1/128"`,
        );
      }
      return network;
    }),
    forwardLimit: limit ?? Number.POSITIVE_INFINITY,
  };
}

/** True when headers from `peer` may be applied. A peer without an IP (a unix socket) may. */
export function isTrustedPeer(settings: ForwardedHeadersSettings, peer: IpBytes | undefined): boolean {
  if (peer === undefined) return true;
  return (
    settings.knownProxies.some((proxy) => sameIp(proxy, peer)) ||
    settings.knownNetworks.some((network) => networkContains(network, peer))
  );
}

/** What the hops said, nearest proxy first, and how many of them were used. */
export interface ForwardedResult {
  /** Hops consumed: each was written by a trusted peer. */
  consumed: number;
  for?: IpEndpoint;
  proto?: string;
  host?: string;
}

/**
 * Walks the hops from the nearest proxy outwards (ASP.NET Core's ApplyForwarders). A hop
 * is used only while the peer that wrote it is trusted: first the connection's peer,
 * then each hop's `for`. A hop whose `for` is absent or not an IP (obfuscated,
 * "unknown") is used, but ends the walk: who wrote the next one cannot be checked.
 */
export function walkHops(
  settings: ForwardedHeadersSettings,
  peer: IpBytes | undefined,
  hops: readonly ForwardedHop[],
): ForwardedResult {
  const result: ForwardedResult = { consumed: 0 };
  let current = peer;
  const limit = Math.min(hops.length, settings.forwardLimit);
  while (result.consumed < limit && isTrustedPeer(settings, current)) {
    const hop = hops[result.consumed] as ForwardedHop;
    result.consumed++;
    const proto = hop.proto === undefined ? undefined : parseScheme(hop.proto);
    if (settings.proto && proto !== undefined) result.proto = proto;
    if (settings.host && hop.host !== undefined && isValidHost(hop.host)) result.host = hop.host;
    const node = hop.for === undefined ? undefined : parseNode(hop.for);
    if (node === undefined) break;
    if (settings.for) result.for = node;
    current = node.address;
  }
  return result;
}

/** The X-Forwarded-* lists as hops, nearest proxy (the last entries) first. */
function hopsFromLists(fors: string[], protos: string[], hosts: string[]): ForwardedHop[] {
  const count = Math.max(fors.length, protos.length, hosts.length);
  const hops: ForwardedHop[] = [];
  const fromEnd = (list: string[], i: number) => {
    const entry = list[list.length - 1 - i];
    return entry === "" ? undefined : entry;
  };
  for (let i = 0; i < count; i++) {
    hops.push({ for: fromEnd(fors, i), proto: fromEnd(protos, i), host: fromEnd(hosts, i) });
  }
  return hops;
}

/** The remaining entries of a list after the last `consumed`, or undefined when none remain. */
function trimList(list: string[], consumed: number): string | undefined {
  const rest = list.slice(0, Math.max(0, list.length - consumed));
  return rest.length === 0 ? undefined : rest.join(", ");
}

/**
 * Applies the forwarded headers of one request: rewrites the remote address, scheme and
 * host, keeps the originals in X-Original-For / -Proto / -Host, and removes the hops
 * it used from the forwarded headers.
 */
export function applyForwardedHeaders(ctx: HttpContext, settings: ForwardedHeadersSettings): void {
  const headers = ctx.request.headers;
  const xNames = ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"] as const;
  const selected = [settings.for, settings.proto, settings.host];
  const lists = xNames.map((name, i) =>
    selected[i] && headers.has(name) ? splitList(headers.getAll(name).join(",")) : [],
  );
  const hasX = lists.some((list) => list.length > 0);
  const forwardedValue = headers.has("forwarded") ? headers.getAll("forwarded").join(", ") : undefined;
  // A client can send either format through a proxy that writes only the other one,
  // so when both arrive neither is believed.
  if (forwardedValue !== undefined && hasX) return;
  let hops: ForwardedHop[];
  if (forwardedValue !== undefined) {
    const parsed = parseForwarded(forwardedValue);
    if (parsed === undefined) return;
    hops = parsed.reverse();
  } else if (hasX) {
    hops = hopsFromLists(lists[0] as string[], lists[1] as string[], lists[2] as string[]);
  } else return;

  const connection = ctx.connection;
  const remoteText = connection.remoteAddress;
  const peer = remoteText === "" ? undefined : parseIp(remoteText);
  // A peer address that is not an IP cannot be matched against the known proxies.
  if (remoteText !== "" && peer === undefined) return;
  const result = walkHops(settings, peer, hops);
  if (result.for === undefined && result.proto === undefined && result.host === undefined) return;

  if (forwardedValue !== undefined) {
    const rest = hops.slice(result.consumed).reverse();
    if (rest.length === 0) headers.delete("forwarded");
    else headers.set("forwarded", formatForwarded(rest));
  } else {
    xNames.forEach((name, i) => {
      if (!selected[i] || !headers.has(name)) return;
      const rest = trimList(lists[i] as string[], result.consumed);
      if (rest === undefined) headers.delete(name);
      else headers.set(name, rest);
    });
  }
  if (result.for !== undefined) {
    if (peer !== undefined) headers.set("x-original-for", formatNode({ address: peer, port: connection.remotePort }));
    const original = ctx.features.get(IHttpConnectionFeature);
    ctx.features.set(IHttpConnectionFeature, {
      connectionId: original?.connectionId ?? "",
      localAddress: original?.localAddress ?? "",
      localPort: original?.localPort ?? 0,
      remoteAddress: formatIp(result.for.address),
      remotePort: result.for.port,
    });
  }
  if (result.proto !== undefined) {
    headers.set("x-original-proto", ctx.request.scheme);
    ctx.request.scheme = result.proto;
  }
  if (result.host !== undefined) {
    const host = ctx.request.host;
    if (host !== "") headers.set("x-original-host", host);
    ctx.request.host = result.host;
  }
}

/**
 * The forwarded headers middleware (ASP.NET Core's ForwardedHeadersMiddleware), for apps
 * behind a reverse proxy. Add it first: `app.useForwardedHeaders(options)`.
 */
export function forwardedHeaders(options?: ForwardedHeadersOptions): Middleware {
  const settings = resolveForwardedHeadersOptions(options);
  return (ctx, next) => {
    applyForwardedHeaders(ctx, settings);
    return next();
  };
}
