// Property tests for the request target (packages/peregrine/src/native/request-feature.ts):
// the split into path and query string, percent-decoding of the path (decodePath keeps
// %2F encoded and never throws), and ctx.request.query, URLSearchParams over the raw
// query string.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FeatureCollection } from "../../packages/peregrine/src/features/feature-collection.js";
import { IHttpRequestFeature } from "../../packages/peregrine/src/features/index.js";
import { HttpContext } from "../../packages/peregrine/src/http/context.js";
import { decodePath } from "../../packages/peregrine/src/http/target.js";
import { NativeRequestBody, NativeRequestFeature } from "../../packages/peregrine/src/native/request-feature.js";
import type { RequestRecord } from "../../packages/peregrine/src/native/tape.js";
import { NodeRequestFeature } from "../../packages/peregrine/src/servers/node/node-request.js";

const RUNS = { seed: 0x5eed, numRuns: 500 };

/** Any text, lone surrogates included. */
const anyText = fc.string({ unit: "binary", maxLength: 24 });
/** Text rich in escapes, well formed or not: %2F, %2f, %25, %C3%A9, %, %G0, %E2%82. */
const escapeText = fc
  .array(
    fc.oneof(
      fc.constantFrom("%2F", "%2f", "%25", "%C3%A9", "%E2%82%AC", "%", "%G0", "%E2%82", "%C0%AF", "/", "?", "+", "a"),
      fc.stringMatching(/^%[0-9A-Fa-f]{2}$/),
      fc.string({ maxLength: 3 }),
    ),
    { maxLength: 12 },
  )
  .map((pieces) => pieces.join(""));
/** A decoded path segment: any text without a slash. */
const segment = fc.string({ unit: "binary", maxLength: 8 }).filter((s) => !s.includes("/"));

/** The feature as the native server builds it, over a record with just a target. */
function requestFor(target: string): { feature: NativeRequestFeature; ctx: HttpContext } {
  const record = { protocol: "HTTP/1.1", https: false, method: "GET", target } as unknown as RequestRecord;
  const feature = new NativeRequestFeature(record, {
    requestBody: new NativeRequestBody({ readBody() {} }, true),
  });
  const features = new FeatureCollection();
  features.set(IHttpRequestFeature, feature);
  return { feature, ctx: new HttpContext(features) };
}

const slashes = (s: string) => s.split("/").length - 1;
/** False for text with a lone surrogate, which has no UTF-8 form a client could send. */
const wellFormed = (s: string) => !/\p{Cs}/u.test(s);

describe("request target (properties)", () => {
  it("decodePath never throws and never turns an escape into a slash", () => {
    fc.assert(
      fc.property(fc.oneof(anyText, escapeText), (raw) => {
        const decoded = decodePath(raw);
        expect(slashes(decoded)).toBe(slashes(raw));
        if (!raw.includes("%")) expect(decoded).toBe(raw);
      }),
      RUNS,
    );
  });

  it("decodePath decodes what encodeURIComponent encoded, segment by segment", () => {
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 5 }), (segments) => {
        fc.pre(segments.every(wellFormed));
        const raw = `/${segments.map(encodeURIComponent).join("/")}`;
        expect(decodePath(raw)).toBe(`/${segments.join("/")}`);
      }),
      RUNS,
    );
  });

  it("an encoded slash stays %2F, so it never splits a segment", () => {
    fc.assert(
      fc.property(fc.array(fc.array(segment, { minLength: 1, maxLength: 3 }), { maxLength: 4 }), (segments) => {
        fc.pre(segments.flat().every(wellFormed));
        // Each segment holds slashes, sent as %2F.
        const raw = `/${segments.map((parts) => parts.map(encodeURIComponent).join("%2F")).join("/")}`;
        expect(decodePath(raw)).toBe(`/${segments.map((parts) => parts.join("%2F")).join("/")}`);
      }),
      RUNS,
    );
  });

  it("the target splits at the first '?': the path is decoded, the query string kept raw (native and node)", () => {
    fc.assert(
      fc.property(
        fc.oneof(anyText, escapeText).map((p) => `/${p.replaceAll("?", "")}`),
        fc.option(fc.oneof(anyText, escapeText)),
        (rawPath, query) => {
          const target = query === null ? rawPath : `${rawPath}?${query}`;
          const { feature, ctx } = requestFor(target);
          expect(feature.rawTarget).toBe(target);
          expect(feature.path).toBe(decodePath(rawPath));
          expect(feature.queryString).toBe(query === null ? "" : `?${query}`);
          expect(ctx.request.path).toBe(feature.path);
          expect(ctx.request.queryString).toBe(feature.queryString);
          // The node server splits the same way.
          const node = new NodeRequestFeature(
            { httpVersion: "1.1", method: "GET", url: target } as never,
            false,
            {} as never,
          );
          expect([node.rawTarget, node.path, node.queryString]).toEqual([target, feature.path, feature.queryString]);
        },
      ),
      RUNS,
    );
  });

  it("ctx.request.query gives back the pairs the client encoded, in order", () => {
    const pair = fc.tuple(anyText, anyText).filter(([k, v]) => wellFormed(k) && wellFormed(v));
    fc.assert(
      fc.property(fc.array(pair, { maxLength: 6 }), fc.boolean(), (pairs, plusForSpace) => {
        const encode = (s: string) =>
          plusForSpace ? encodeURIComponent(s).replaceAll("%20", "+") : encodeURIComponent(s);
        const query = pairs.map(([k, v]) => `${encode(k)}=${encode(v)}`).join("&");
        const { ctx } = requestFor(`/search?${query}`);
        expect([...ctx.request.query]).toEqual(pairs);
      }),
      RUNS,
    );
  });

  it("ctx.request.query is URLSearchParams over the raw query string, whatever it holds", () => {
    fc.assert(
      fc.property(fc.oneof(anyText, escapeText), (query) => {
        const { ctx } = requestFor(`/?${query}`);
        // Only the separator is dropped: in "/??a", the query is "?a" (as in WHATWG URL).
        expect([...ctx.request.query]).toEqual([...new URLSearchParams(`?${query}`)]);
      }),
      RUNS,
    );
  });
});
