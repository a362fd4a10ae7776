import { formatIp, type IpBytes, parseIp } from "./ip-network.js";

/**
 * Parsing of the headers proxies add: the RFC 7239 `Forwarded` header and the
 * X-Forwarded-For / -Proto / -Host lists. Nothing here throws, whatever the input:
 * malformed input is reported as undefined.
 */

/** One proxy hop, as a `Forwarded` element or one position of the X-Forwarded-* lists. */
export interface ForwardedHop {
  /** The node the hop received the request from (`for=`), as sent; undefined when absent. */
  for?: string | undefined;
  /** The scheme the hop received the request over. */
  proto?: string | undefined;
  /** The Host the hop received. */
  host?: string | undefined;
}

/** A `for=` node that names an IP endpoint; obfuscated names and "unknown" do not. */
export interface IpEndpoint {
  address: IpBytes;
  /** 0 when the node has no port, or an obfuscated one. */
  port: number;
}

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Parses a `Forwarded` header value (RFC 7239 section 4): elements separated by commas,
 * pairs by semicolons, values tokens or quoted strings. Several header lines are joined
 * with ", " before parsing. Undefined when the value is malformed anywhere, so that a
 * client's broken element can never shift which element the proxy wrote.
 */
export function parseForwarded(value: string): ForwardedHop[] | undefined {
  const hops: ForwardedHop[] = [];
  let hop: ForwardedHop = {};
  let seen = new Set<string>();
  let i = 0;
  const n = value.length;
  const skipSpace = () => {
    while (i < n && (value[i] === " " || value[i] === "\t")) i++;
  };
  for (;;) {
    skipSpace();
    // An empty element (", ,") is allowed by the list syntax and carries nothing.
    if (value[i] === "," || i === n) {
      if (seen.size > 0) hops.push(hop);
      if (i === n) return hops;
      hop = {};
      seen = new Set();
      i++;
      continue;
    }
    const start = i;
    while (i < n && value[i] !== "=" && value[i] !== ";" && value[i] !== ",") i++;
    const name = value.slice(start, i).trimEnd().toLowerCase();
    if (value[i] !== "=" || !TCHAR.test(name) || seen.has(name)) return undefined;
    seen.add(name);
    i++;
    let text: string;
    if (value[i] === '"') {
      let out = "";
      i++;
      for (;;) {
        if (i >= n) return undefined;
        const c = value[i] as string;
        if (c === '"') break;
        if (c === "\\") {
          i++;
          if (i >= n) return undefined;
        }
        out += value[i];
        i++;
      }
      i++;
      text = out;
    } else {
      const valueStart = i;
      while (i < n && value[i] !== ";" && value[i] !== "," && value[i] !== " " && value[i] !== "\t") i++;
      text = value.slice(valueStart, i);
      if (!TCHAR.test(text)) return undefined;
    }
    // `by` and extensions are checked for syntax and otherwise ignored.
    if (name === "for" || name === "proto" || name === "host") hop[name] = text;
    skipSpace();
    if (value[i] === ";") {
      i++;
      continue;
    }
    if (i < n && value[i] !== ",") return undefined;
  }
}

/** Formats hops as a `Forwarded` header value; `parseForwarded` reads it back unchanged. */
export function formatForwarded(hops: readonly ForwardedHop[]): string {
  return hops
    .map((hop) =>
      (["for", "proto", "host"] as const)
        .filter((name) => hop[name] !== undefined)
        .map((name) => `${name}=${quoteIfNeeded(hop[name] as string)}`)
        .join(";"),
    )
    .join(", ");
}

function quoteIfNeeded(value: string): string {
  return TCHAR.test(value) ? value : `"${value.replace(/["\\]/g, "\\$&")}"`;
}

/** Splits one X-Forwarded-* header (its lines joined with ",") into trimmed entries. */
export function splitList(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value.split(",").map((entry) => entry.trim());
}

/**
 * Parses a node: `192.0.2.1`, `192.0.2.1:8080`, `[2001:db8::1]`, `[2001:db8::1]:8080`,
 * or a bare IPv6 address. Obfuscated identifiers (`_hidden`), `unknown`, and anything
 * else give undefined. An obfuscated port (`[::1]:_p`) counts as no port.
 */
export function parseNode(text: string): IpEndpoint | undefined {
  let host = text;
  let portText: string | undefined;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) return undefined;
    host = text.slice(1, close);
    const after = text.slice(close + 1);
    if (after !== "") {
      if (!after.startsWith(":")) return undefined;
      portText = after.slice(1);
    }
  } else {
    const colon = text.indexOf(":");
    // More than one colon: a bare IPv6 address, which has no port.
    if (colon >= 0 && text.indexOf(":", colon + 1) < 0) {
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
    }
  }
  const address = parseIp(host);
  if (address === undefined) return undefined;
  if (portText === undefined || /^_[A-Za-z0-9._-]+$/.test(portText)) return { address, port: 0 };
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) return undefined;
  return { address, port: Number(portText) };
}

/** Formats an IP endpoint as `1.2.3.4:80` or `[::1]:80` (no port when it is 0). */
export function formatNode(node: IpEndpoint): string {
  const ip = formatIp(node.address);
  const host = ip.includes(":") ? `[${ip}]` : ip;
  return node.port === 0 ? host : `${host}:${node.port}`;
}

/** A scheme as RFC 3986 spells it; lowercased, as schemes compare case-insensitively. */
export function parseScheme(text: string): string | undefined {
  return /^[A-Za-z][A-Za-z0-9+.-]*$/.test(text) ? text.toLowerCase() : undefined;
}

/** A Host value: a name or IPv4 address, or a bracketed IPv6 address, with an optional port. */
export function isValidHost(text: string): boolean {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|[A-Za-z0-9._~-]+)(?::(\d{1,5}))?$/.exec(text);
  if (match === null) return false;
  if (match[1] !== undefined && parseIp(match[1]) === undefined) return false;
  return match[2] === undefined || Number(match[2]) <= 65535;
}
