import { DEFAULT_HTTP2_LIMITS, DEFAULT_LIMITS } from "../server/limits.js";
import type { ConfigEntry, ConfigValue } from "./configuration.js";
import { closestMatch } from "./did-you-mean.js";

/**
 * How a string from a variable or an argument is read for a key. JSON values keep their
 * own type; the validators then check them either way.
 */
export type ValueType = "string" | "number" | "boolean";

/** A key Peregrine reads; "*" stands for a name the user picks (an endpoint, an SNI host). */
interface KnownKey {
  path: string;
  segments: string[];
  type: ValueType;
}

/** The top-level sections that belong to Peregrine; every key inside them must be known. */
const OWN_SECTIONS = new Set(["server", "logging"]);

const DATA_RATES = new Set(["minRequestBodyDataRate", "minResponseDataRate"]);

function limitKeys(): [string, ValueType][] {
  const keys: [string, ValueType][] = [];
  for (const name of Object.keys(DEFAULT_LIMITS)) {
    if (name === "http2") continue;
    if (DATA_RATES.has(name)) {
      // The section itself takes null (no check), or its two fields.
      keys.push([`server:limits:${name}`, "number"]);
      keys.push([`server:limits:${name}:bytesPerSecond`, "number"]);
      keys.push([`server:limits:${name}:gracePeriod`, "number"]);
    } else {
      keys.push([`server:limits:${name}`, "number"]);
    }
  }
  for (const name of Object.keys(DEFAULT_HTTP2_LIMITS)) keys.push([`server:limits:http2:${name}`, "number"]);
  return keys;
}

const KNOWN_KEYS: readonly KnownKey[] = (
  [
    ["environment", "string"],
    ["urls", "string"],
    ["urls:*", "string"],
    ["server:kind", "string"],
    ["server:addServerHeader", "boolean"],
    ["server:shutdownTimeout", "number"],
    ...limitKeys(),
    ["server:endpoints:*:url", "string"],
    ["server:endpoints:*:protocols", "string"],
    ["server:endpoints:*:certificate:path", "string"],
    ["server:endpoints:*:certificate:keyPath", "string"],
    ["server:endpoints:*:sni:*:certificate:path", "string"],
    ["server:endpoints:*:sni:*:certificate:keyPath", "string"],
    ["server:endpoints:*:clientCertificateMode", "string"],
    ["server:endpoints:*:clientCertificateCa", "string"],
    ["server:certificates:default:path", "string"],
    ["server:certificates:default:keyPath", "string"],
    ["server:clientCertificateMode", "string"],
    ["server:clientCertificateCa", "string"],
    ["logging:logLevel:default", "string"],
  ] as const
).map(([path, type]) => ({ path, segments: path.split(":"), type }));

/** The known key `key` is an instance of, spelled as the schema spells it, with the user's names kept. */
export function knownKey(key: string): { path: string; type: ValueType } | undefined {
  const segments = key.split(":");
  for (const known of KNOWN_KEYS) {
    if (known.segments.length !== segments.length) continue;
    const canonical: string[] = [];
    let matches = true;
    for (let i = 0; i < segments.length; i++) {
      const pattern = known.segments[i] as string;
      const segment = segments[i] as string;
      if (pattern === "*" ? segment === "" : pattern.toLowerCase() !== segment.toLowerCase()) {
        matches = false;
        break;
      }
      canonical.push(pattern === "*" ? segment : pattern);
    }
    if (matches) return { path: canonical.join(":"), type: known.type };
  }
  return undefined;
}

/** A known key close to an unknown one: a typo, or a known field under the wrong section. */
function suggestion(key: string): string | undefined {
  const segments = key.split(":");
  const instances = KNOWN_KEYS.filter((k) => k.segments.length === segments.length).map((k) =>
    k.segments.map((s, i) => (s === "*" ? segments[i] : s)).join(":"),
  );
  const typo = closestMatch(key, instances);
  if (typo !== undefined) return typo;
  const leaf = (segments.at(-1) as string).toLowerCase();
  const sameLeaf = KNOWN_KEYS.filter((k) => !k.path.includes("*") && k.segments.at(-1)?.toLowerCase() === leaf);
  return sameLeaf.length === 1 ? sameLeaf[0]?.path : undefined;
}

/**
 * The warning for a key Peregrine does not know, or undefined. Keys outside Peregrine's
 * sections belong to the app and pass silently, unless they look like a misspelt key of
 * Peregrine's.
 */
export function unknownKeyWarning(key: string): string | undefined {
  if (knownKey(key) !== undefined) return undefined;
  const section = (key.split(":")[0] as string).toLowerCase();
  const hint = suggestion(key);
  if (hint === undefined && !OWN_SECTIONS.has(section)) return undefined;
  return `unknown configuration key "${key}"${hint === undefined ? "" : `; did you mean "${hint}"?`}`;
}

/** Reads a string from a variable or an argument as the key's type; anything else is left for the validators. */
export function typedValue(entry: ConfigEntry, type: ValueType): ConfigValue {
  const value = entry.value;
  if (typeof value !== "string" || entry.source.kind === "file") return value;
  if (type === "number") {
    if (value.toLowerCase() === "null") return null;
    const trimmed = value.trim();
    if (/^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i.test(trimmed)) return Number(trimmed);
  }
  if (type === "boolean") {
    if (/^true$/i.test(value.trim())) return true;
    if (/^false$/i.test(value.trim())) return false;
  }
  return value;
}
