// Property tests for the forwarded headers middleware (packages/peregrine/src/middleware/):
// the parsers never throw, formatted values read back unchanged, a hop is used only when
// the peer that wrote it is trusted, and no more than forwardLimit hops are used.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FeatureCollection } from "../../packages/peregrine/src/features/feature-collection.js";
import { IHttpConnectionFeature, IHttpRequestFeature } from "../../packages/peregrine/src/features/index.js";
import { HttpContext } from "../../packages/peregrine/src/http/context.js";
import { HeaderDictionary } from "../../packages/peregrine/src/http/headers.js";
import {
  applyForwardedHeaders,
  isTrustedPeer,
  resolveForwardedHeadersOptions,
  walkHops,
} from "../../packages/peregrine/src/middleware/forwarded-headers.js";
import {
  type ForwardedHop,
  formatForwarded,
  formatNode,
  isValidHost,
  parseForwarded,
  parseNode,
  splitList,
} from "../../packages/peregrine/src/middleware/forwarded-parser.js";
import { formatIp, parseIp, parseNetwork } from "../../packages/peregrine/src/middleware/ip-network.js";

const RUNS = { seed: 0x5eed, numRuns: 500 };

/** Any text, lone surrogates included. */
const anyText = fc.string({ unit: "binary", maxLength: 40 });
/** Text made of the characters the Forwarded syntax cares about. */
const syntaxText = fc
  .array(fc.constantFrom("for", "proto", "host", "by", "=", ";", ",", '"', "\\", " ", "[", "]", ":", "_x", "1.2.3.4"), {
    maxLength: 16,
  })
  .map((parts) => parts.join(""));
const ipBytes = fc.uint8Array({ minLength: 16, maxLength: 16 });
const ipv4 = fc.ipV4();
const ip = fc.oneof(fc.ipV4(), fc.ipV6());

describe("the parsers", () => {
  it("never throw, whatever the input", () => {
    fc.assert(
      fc.property(fc.oneof(anyText, syntaxText), (text) => {
        parseForwarded(text);
        parseNode(text);
        parseIp(text);
        parseNetwork(text);
        isValidHost(text);
        splitList(text);
      }),
      RUNS,
    );
  });

  it("read formatted Forwarded values back unchanged", () => {
    const value = fc.option(fc.string({ unit: "binary", maxLength: 12 }), { nil: undefined });
    const hop = fc
      .record({ for: value, proto: value, host: value })
      .filter((h) => h.for !== undefined || h.proto !== undefined || h.host !== undefined)
      .map((h) => Object.fromEntries(Object.entries(h).filter(([, v]) => v !== undefined)) as ForwardedHop);
    fc.assert(
      fc.property(fc.array(hop, { maxLength: 5 }), (hops) => {
        expect(parseForwarded(formatForwarded(hops))).toEqual(hops);
      }),
      RUNS,
    );
  });

  it("read formatted addresses and nodes back unchanged", () => {
    fc.assert(
      fc.property(ipBytes, fc.integer({ min: 0, max: 65535 }), (bytes, port) => {
        expect(parseIp(formatIp(bytes))).toEqual(bytes);
        const node = parseNode(formatNode({ address: bytes, port }));
        expect(node).toEqual({ address: bytes, port });
        // Quoted in a Forwarded header, as IPv6 with a port must be.
        const [hop] = parseForwarded(formatForwarded([{ for: formatNode({ address: bytes, port }) }])) ?? [];
        expect(parseNode(hop?.for ?? "")).toEqual({ address: bytes, port });
      }),
      RUNS,
    );
    fc.assert(
      fc.property(ip, (text) => {
        // Every textual form of an address names the same address once formatted.
        expect(parseIp(formatIp(parseIp(text) as Uint8Array))).toEqual(parseIp(text));
      }),
      RUNS,
    );
  });
});

/** A pool of addresses, some inside the trusted network 10.0.0.0/8. */
const address = fc.oneof(
  fc.tuple(fc.nat(255), fc.nat(255)).map(([a, b]) => `10.0.${a}.${b}`),
  ipv4,
  fc.constantFrom("_hidden", "unknown", "garbage", "[::1]:80", "10.1.1.1:443"),
);
const hopArb = fc.record({
  for: fc.option(address, { nil: undefined }),
  proto: fc.option(fc.constantFrom("https", "http", "ws", "bad scheme"), { nil: undefined }),
  host: fc.option(fc.constantFrom("a.example", "b.example:8443", "bad host!"), { nil: undefined }),
});
const limitArb = fc.oneof(fc.integer({ min: 1, max: 6 }), fc.constant(null));

describe("walking the hops", () => {
  it("uses a hop only when the peer that wrote it is trusted, and at most forwardLimit hops", () => {
    fc.assert(
      fc.property(
        fc.oneof(address, fc.constant("")),
        fc.array(hopArb, { maxLength: 8 }),
        limitArb,
        (peerText, hops, forwardLimit) => {
          const settings = resolveForwardedHeadersOptions({ knownNetworks: ["10.0.0.0/8", "::1/128"], forwardLimit });
          const peer = peerText === "" ? undefined : parseNode(peerText)?.address;
          if (peerText !== "" && peer === undefined) return;
          const result = walkHops(settings, peer, hops);
          expect(result.consumed).toBeLessThanOrEqual(forwardLimit ?? hops.length);
          expect(result.consumed).toBeLessThanOrEqual(hops.length);
          // Hop i was written by the peer for i = 0, and by hop i-1's `for` after that.
          let writer = peer;
          for (let i = 0; i < result.consumed; i++) {
            expect(isTrustedPeer(settings, writer)).toBe(true);
            writer = parseNode(hops[i]?.for ?? "")?.address;
            if (i < result.consumed - 1) expect(writer).toBeDefined();
          }
          // The address shown is the outermost one among the hops used.
          const nodes = hops.slice(0, result.consumed).map((hop) => parseNode(hop.for ?? ""));
          expect(result.for).toEqual(nodes.filter((node) => node !== undefined).at(-1));
        },
      ),
      RUNS,
    );
  });

  it("never shows an address that an untrusted peer claimed, through the whole middleware", () => {
    fc.assert(
      fc.property(ipv4, fc.array(address, { minLength: 1, maxLength: 6 }), limitArb, (peer, entries, forwardLimit) => {
        const features = new FeatureCollection();
        const headers = new HeaderDictionary({ "x-forwarded-for": entries.join(", "), host: "app" });
        features.set(IHttpRequestFeature, { scheme: "http", headers } as unknown as IHttpRequestFeature);
        features.set(IHttpConnectionFeature, {
          connectionId: "1",
          remoteAddress: peer,
          remotePort: 1,
          localAddress: "127.0.0.1",
          localPort: 80,
        });
        const ctx = new HttpContext(features);
        const settings = resolveForwardedHeadersOptions({ knownNetworks: ["10.0.0.0/8"], forwardLimit });
        applyForwardedHeaders(ctx, settings);
        const remote = ctx.connection.remoteAddress;
        if (!peer.startsWith("10.")) {
          expect(remote).toBe(peer);
          expect(headers.get("x-forwarded-for")).toBe(entries.join(", "));
          return;
        }
        // The entries used are the last ones, each but the outermost one a trusted address.
        const used = entries.length - splitList(headers.get("x-forwarded-for")).filter((e) => e !== "").length;
        const remaining = headers.get("x-forwarded-for");
        expect(used).toBeLessThanOrEqual(forwardLimit ?? entries.length);
        if (remote !== peer) {
          expect(remote).toBe(formatIp(parseNode(entries[entries.length - used] as string)?.address as Uint8Array));
          expect(remaining === undefined ? [] : splitList(remaining)).toEqual(entries.slice(0, entries.length - used));
          for (const entry of entries.slice(entries.length - used + 1)) {
            expect(entry.startsWith("10.")).toBe(true);
          }
        }
      }),
      RUNS,
    );
  });
});
