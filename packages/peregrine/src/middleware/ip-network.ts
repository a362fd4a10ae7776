import { isIPv4, isIPv6 } from "node:net";

/**
 * IP addresses as 16 bytes (IPv4 as IPv4-mapped IPv6, so that a peer node reports as
 * `::ffff:127.0.0.1` matches `127.0.0.0/8`), and CIDR networks over them.
 */
export type IpBytes = Uint8Array;

const V4_MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/** Parses an IPv4 or IPv6 address (no brackets, no port, no zone); undefined if it is neither. */
export function parseIp(text: string): IpBytes | undefined {
  if (isIPv4(text)) {
    const bytes = new Uint8Array(16);
    bytes.set(V4_MAPPED_PREFIX);
    text.split(".").forEach((part, i) => {
      bytes[12 + i] = Number(part);
    });
    return bytes;
  }
  if (!isIPv6(text) || text.includes("%")) return undefined;
  let groups = text;
  let tail: number[] = [];
  // A dotted IPv4 tail (::ffff:1.2.3.4) is two groups.
  const lastColon = groups.lastIndexOf(":");
  if (groups.indexOf(".", lastColon) > 0) {
    const v4 = parseIp(groups.slice(lastColon + 1)) as IpBytes;
    tail = [(v4[12] as number) * 256 + (v4[13] as number), (v4[14] as number) * 256 + (v4[15] as number)];
    groups = `${groups.slice(0, lastColon + 1)}0:0`;
  }
  const [head = "", rest] = groups.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = rest === undefined || rest === "" ? [] : rest.split(":");
  const zeros = rest === undefined ? 0 : 8 - left.length - right.length;
  const words = [...left, ...new Array<string>(zeros).fill("0"), ...right].map((g) => Number.parseInt(g, 16));
  if (tail.length === 2) words.splice(6, 2, ...tail);
  const bytes = new Uint8Array(16);
  words.forEach((word, i) => {
    bytes[i * 2] = word >> 8;
    bytes[i * 2 + 1] = word & 0xff;
  });
  return bytes;
}

/** True for an IPv4 address or an IPv4-mapped IPv6 one. */
export function isV4(bytes: IpBytes): boolean {
  return V4_MAPPED_PREFIX.every((b, i) => bytes[i] === b);
}

/** The address as text: dotted IPv4 for IPv4 and IPv4-mapped addresses, RFC 5952 IPv6 otherwise. */
export function formatIp(bytes: IpBytes): string {
  if (isV4(bytes)) return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((bytes[i] as number) * 256 + (bytes[i + 1] as number));
  // The longest run of two or more zero words becomes "::" (the first one on a tie).
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) {
      best = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLength).join(":")}`;
}

/** A CIDR network such as `10.0.0.0/8` or `::1/128`. */
export interface IpNetwork {
  readonly text: string;
  readonly prefix: IpBytes;
  /** Leading bits that must match, counted over the 16-byte form. */
  readonly bits: number;
}

/** Parses `address/length`; undefined when it is not a CIDR network. */
export function parseNetwork(text: string): IpNetwork | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const address = text.slice(0, slash);
  const lengthText = text.slice(slash + 1);
  const prefix = parseIp(address);
  if (prefix === undefined || !/^\d{1,3}$/.test(lengthText)) return undefined;
  const length = Number(lengthText);
  const v4 = isIPv4(address);
  if (length > (v4 ? 32 : 128)) return undefined;
  return { text, prefix, bits: v4 ? 96 + length : length };
}

/** True when `address` lies in `network`. */
export function networkContains(network: IpNetwork, address: IpBytes): boolean {
  const full = network.bits >> 3;
  for (let i = 0; i < full; i++) if (network.prefix[i] !== address[i]) return false;
  const rest = network.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((network.prefix[full] as number) & mask) === ((address[full] as number) & mask);
}

export function sameIp(a: IpBytes, b: IpBytes): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return false;
  return true;
}
