// Property tests for route templates (packages/peregrine/src/routing/route-template.ts):
// templates built from random segments match the paths built from them and capture the
// right values; any text either parses or fails with PEREGRINE_INVALID_ROUTE.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ErrorCodes, PeregrineError } from "../../packages/peregrine/src/errors.js";
import { matchRouteTemplate, parseRouteTemplate } from "../../packages/peregrine/src/routing/route-template.js";

/** Fixed seed and bounded runs: the same cases on every run, in well under a second. */
const RUNS = { seed: 0x5eed, numRuns: 300 };

/** A literal segment: no braces, slashes or question marks. */
const literal = fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=@-]{1,8}$/);
/** A parameter name, as the parser takes it. */
const name = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,6}$/);
/** A decoded path segment: anything but a slash, including non-ASCII. */
const segmentValue = fc.string({ unit: "binary", minLength: 1, maxLength: 8 }).filter((s) => !s.includes("/"));

type Part = { kind: "literal"; text: string; sent: string } | { kind: "parameter"; name: string; value: string };

/** Literals sent in a random case, since they match case-insensitively. */
const literalPart = fc
  .tuple(literal, fc.boolean())
  .map(([text, upper]): Part => ({ kind: "literal", text, sent: upper ? text.toUpperCase() : text.toLowerCase() }));

const parameterPart = fc.tuple(name, segmentValue).map(([n, value]): Part => ({ kind: "parameter", name: n, value }));

/** Segments whose parameter names are distinct (case-sensitively, as the parser checks). */
const parts = fc.array(fc.oneof(literalPart, parameterPart), { maxLength: 6 }).filter((ps) => {
  const names = ps.flatMap((p) => (p.kind === "parameter" ? [p.name] : []));
  return new Set(names).size === names.length;
});

/** The template for `ps`, then `last` (a parameter segment) if given. */
function template(ps: readonly Part[], last?: string): string {
  const segments = ps.map((p) => (p.kind === "literal" ? p.text : `{${p.name}}`));
  return `/${[...segments, ...(last === undefined ? [] : [last])].join("/")}`;
}

function path(ps: readonly Part[], tail: readonly string[] = []): string {
  return `/${[...ps.map((p) => (p.kind === "literal" ? p.sent : p.value)), ...tail].join("/")}`;
}

function captures(ps: readonly Part[]): Record<string, string> {
  return Object.fromEntries(ps.flatMap((p) => (p.kind === "parameter" ? [[p.name, p.value]] : [])));
}

function freshName(ps: readonly Part[]): string {
  let n = "rest";
  while (ps.some((p) => p.kind === "parameter" && p.name === n)) n += "_";
  return n;
}

describe("route templates (properties)", () => {
  it("a template matches the path built from it and captures each parameter's value", () => {
    fc.assert(
      fc.property(parts, fc.boolean(), (ps, trailingSlash) => {
        const parsed = parseRouteTemplate(template(ps));
        const p = path(ps);
        expect(matchRouteTemplate(parsed, p)).toEqual(captures(ps));
        if (trailingSlash && p !== "/") expect(matchRouteTemplate(parsed, `${p}/`)).toEqual(captures(ps));
      }),
      RUNS,
    );
  });

  it("a path with one segment more or less does not match", () => {
    fc.assert(
      fc.property(parts, segmentValue, (ps, extra) => {
        const parsed = parseRouteTemplate(template(ps));
        expect(matchRouteTemplate(parsed, path(ps, [extra]))).toBeUndefined();
        if (ps.length > 0) expect(matchRouteTemplate(parsed, path(ps.slice(0, -1)))).toBeUndefined();
      }),
      RUNS,
    );
  });

  it("a literal sent differently does not match", () => {
    fc.assert(
      fc.property(parts, literal, (ps, other) => {
        const i = ps.findIndex((p) => p.kind === "literal");
        const lit = ps[i];
        fc.pre(lit !== undefined && lit.kind === "literal" && other.toLowerCase() !== lit.text.toLowerCase());
        const changed = ps.map((p, j) => (j === i ? { ...p, sent: other } : p));
        expect(matchRouteTemplate(parseRouteTemplate(template(ps)), path(changed))).toBeUndefined();
      }),
      RUNS,
    );
  });

  it("a catch-all captures the rest of the path, slashes included, or its default", () => {
    fc.assert(
      fc.property(parts, fc.array(segmentValue, { maxLength: 4 }), fc.option(segmentValue), (ps, rest, fallback) => {
        const n = freshName(ps);
        const last = fallback === null ? `{*${n}}` : `{**${n}=${fallback}}`;
        const parsed = parseRouteTemplate(template(ps, last));
        const expected: Record<string, string> = captures(ps);
        if (rest.length > 0) expected[n] = rest.join("/");
        else if (fallback !== null) expected[n] = fallback;
        expect(matchRouteTemplate(parsed, path(ps, rest))).toEqual(expected);
      }),
      RUNS,
    );
  });

  it("a trailing optional parameter may be missing; a default fills it", () => {
    fc.assert(
      fc.property(parts, segmentValue, fc.option(literal), (ps, value, fallback) => {
        const n = freshName(ps);
        const parsed = parseRouteTemplate(template(ps, fallback === null ? `{${n}?}` : `{${n}=${fallback}}`));
        expect(matchRouteTemplate(parsed, path(ps, [value]))).toEqual({ ...captures(ps), [n]: value });
        const missing = fallback === null ? captures(ps) : { ...captures(ps), [n]: fallback };
        expect(matchRouteTemplate(parsed, path(ps))).toEqual(missing);
      }),
      RUNS,
    );
  });

  it("{x:int} captures exactly the safe integers", () => {
    const intText = fc.oneof(
      fc.integer().map(String),
      fc.string({ maxLength: 6 }).filter((s) => s !== "" && !s.includes("/")),
    );
    fc.assert(
      fc.property(intText, (value) => {
        const matched = matchRouteTemplate(parseRouteTemplate("/items/{id:int}"), `/items/${value}`);
        const isInt = /^-?\d+$/.test(value) && Number.isSafeInteger(Number(value));
        expect(matched).toEqual(isInt ? { id: value } : undefined);
      }),
      RUNS,
    );
  });

  it("parsing any text either succeeds or throws PEREGRINE_INVALID_ROUTE naming the template", () => {
    // Template syntax is over-represented so that most texts get deep into the parser.
    const piece = fc.oneof(
      fc.constantFrom("{", "}", "/", "?", "*", "**", "=", ":", "(", ")", ",", "~", " ", "\\", "[", "]", "^", "$"),
      fc.constantFrom(
        "id",
        "int",
        "bool",
        "guid",
        "alpha",
        "min(",
        "max(",
        "range(",
        "length(",
        "regex(",
        "minlength(",
      ),
      fc.stringMatching(/^[a-z0-9_]{1,3}$/),
      fc.string({ unit: "binary", maxLength: 2 }),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 16 }), segmentValue, (pieces, probe) => {
        const text = pieces.join("");
        let parsed: ReturnType<typeof parseRouteTemplate>;
        try {
          parsed = parseRouteTemplate(text);
        } catch (error) {
          expect(error).toBeInstanceOf(PeregrineError);
          expect((error as PeregrineError).code).toBe(ErrorCodes.INVALID_ROUTE);
          expect((error as PeregrineError).message).toContain(`"${text}"`);
          return;
        }
        // Whatever parses can be matched against without throwing.
        matchRouteTemplate(parsed, `/${probe}`);
        matchRouteTemplate(parsed, `/${probe}/${probe}`);
      }),
      { seed: 0x5eed, numRuns: 1000 },
    );
  });
});
