// Property tests for limit and option validation (packages/peregrine/src/server/limits.ts
// resolveLimits, and WebApplication.create): every valid value is accepted as given;
// every invalid one (out of range, NaN, the wrong type, an unknown key) throws
// PEREGRINE_INVALID_OPTION with a message that names the option and the value.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ErrorCodes, PeregrineError } from "../../packages/peregrine/src/errors.js";
import { WebApplication } from "../../packages/peregrine/src/hosting/web-application.js";
import { silentLogger } from "../../packages/peregrine/src/logging.js";
import { DEFAULT_LIMITS, resolveLimits } from "../../packages/peregrine/src/server/limits.js";

const RUNS = { seed: 0x5eed, numRuns: 200 };

/** A limit's rule: whole numbers from min to max, and null where null turns it off. */
interface Rule {
  min: number;
  max: number;
  nullable?: boolean;
}

const I32 = 2 ** 31 - 1;
const U32 = 2 ** 32 - 1;
const SAFE = Number.MAX_SAFE_INTEGER;

/** The documented ranges (docs/limits.md). */
const LIMITS: Record<string, Rule> = {
  maxRequestBodySize: { min: 0, max: SAFE, nullable: true },
  maxRequestBufferSize: { min: 1024, max: SAFE },
  maxResponseBufferSize: { min: 1, max: SAFE },
  maxConcurrentConnections: { min: 1, max: I32, nullable: true },
  maxRequestLineSize: { min: 16, max: I32 },
  maxRequestHeaderCount: { min: 1, max: I32 },
  maxRequestHeadersTotalSize: { min: 64, max: I32 },
  keepAliveTimeout: { min: 1, max: I32 },
  requestHeadersTimeout: { min: 1, max: I32 },
};

const HTTP2: Record<string, Rule> = {
  maxStreamsPerConnection: { min: 1, max: U32 },
  headerTableSize: { min: 0, max: U32 },
  maxFrameSize: { min: 16_384, max: 16_777_215 },
  maxRequestHeaderFieldSize: { min: 1, max: U32 },
  initialConnectionWindowSize: { min: 65_535, max: I32 },
  initialStreamWindowSize: { min: 65_535, max: I32 },
  keepAlivePingDelay: { min: 1000, max: I32, nullable: true },
  keepAlivePingTimeout: { min: 1000, max: I32 },
};

const RATES = ["minRequestBodyDataRate", "minResponseDataRate"];

function valid(rule: Rule): fc.Arbitrary<number | null> {
  const n: fc.Arbitrary<number | null> = fc.oneof(
    fc.constantFrom(rule.min, rule.max),
    fc.integer({ min: rule.min, max: Math.min(rule.max, 2 ** 53 - 1) }),
  );
  return rule.nullable ? fc.oneof(n, fc.constant(null)) : n;
}

/** Values of the wrong type for a number limit, including ones that defeat String(). */
const wrongType: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.boolean(),
  fc.bigInt({ min: -10n, max: 10n }),
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }),
  fc.constant(Object.create(null)),
  fc.constant(Symbol("limit")),
  fc.constant(() => 1),
);

function invalid(rule: Rule): fc.Arbitrary<unknown> {
  const numbers: fc.Arbitrary<unknown>[] = [
    fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
    fc.integer({ min: -1000, max: -1 }),
    fc.double({ min: rule.min + 0.001, max: rule.min + 1000, noNaN: true }).filter((d) => !Number.isInteger(d)),
  ];
  if (rule.min > 0) numbers.push(fc.integer({ min: -1000, max: rule.min - 1 }));
  if (rule.max < SAFE) numbers.push(fc.double({ min: rule.max + 1, max: 2 ** 60, noNaN: true }));
  if (!rule.nullable) numbers.push(fc.constant(null));
  return fc.oneof(...numbers, wrongType);
}

/** Keys no limit has: random names, and names every object inherits. */
const unknownKey = (known: Record<string, unknown>) =>
  fc
    .oneof(
      fc.string({ minLength: 1, maxLength: 12 }),
      fc.constantFrom("constructor", "toString", "valueOf", "hasOwnProperty", "__proto__", "isPrototypeOf"),
    )
    .filter((k) => !Object.hasOwn(known, k));

/** An object with one own property, even `__proto__`. */
function withKey(key: string, value: unknown): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  Object.defineProperty(o, key, { value, enumerable: true, configurable: true, writable: true });
  return o;
}

/** What a message should show of a value: enough to find it. */
function shown(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || value === null || value === undefined)
    return String(value);
  return "";
}

function expectInvalidOption(run: () => unknown, ...named: string[]): void {
  let thrown: unknown;
  try {
    run();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(PeregrineError);
  const error = thrown as PeregrineError;
  expect(error.code).toBe(ErrorCodes.INVALID_OPTION);
  for (const text of named) expect(error.message).toContain(text);
}

describe("limits (properties)", () => {
  it("every valid value of every limit is accepted as given", () => {
    const one = fc.oneof(
      ...Object.entries(LIMITS).map(([key, rule]) => valid(rule).map((v) => [key, v] as const)),
      ...RATES.map((key) =>
        fc
          .option(
            fc.record({
              bytesPerSecond: fc.double({ min: Number.MIN_VALUE, max: 1e12, noNaN: true }),
              gracePeriod: fc.integer({ min: 0, max: I32 }),
            }),
          )
          .map((v) => [key, v] as const),
      ),
    );
    const http2 = fc.record(Object.fromEntries(Object.entries(HTTP2).map(([key, rule]) => [key, valid(rule)])), {
      requiredKeys: [],
    });
    fc.assert(
      fc.property(fc.uniqueArray(one, { selector: ([k]) => k, maxLength: 6 }), http2, (entries, h2) => {
        const given = { ...Object.fromEntries(entries), http2: h2 };
        const resolved = resolveLimits(given);
        for (const [key, value] of entries) expect(resolved[key as keyof typeof resolved]).toEqual(value);
        for (const [key, value] of Object.entries(h2))
          expect(resolved.http2[key as keyof typeof resolved.http2]).toBe(value);
        for (const key of Object.keys(DEFAULT_LIMITS)) {
          if (!(key in given))
            expect(resolved[key as keyof typeof resolved]).toEqual(DEFAULT_LIMITS[key as keyof typeof DEFAULT_LIMITS]);
        }
      }),
      RUNS,
    );
  });

  it("every invalid value of a limit throws PEREGRINE_INVALID_OPTION naming the limit and the value", () => {
    const top = Object.entries(LIMITS).map(([key, rule]) =>
      invalid(rule).map((value) => ({ given: withKey(key, value), name: `limits.${key}`, value })),
    );
    const nested = Object.entries(HTTP2).map(([key, rule]) =>
      invalid(rule).map((value) => ({ given: { http2: withKey(key, value) }, name: `limits.http2.${key}`, value })),
    );
    const rates = RATES.map((key) =>
      fc
        .oneof(
          fc
            .oneof(fc.double({ max: 0 }), fc.constant(Number.NaN), fc.constant(Number.POSITIVE_INFINITY), wrongType)
            .map((v) => ({
              value: v,
              field: "bytesPerSecond",
              rate: { bytesPerSecond: v, gracePeriod: 0 },
            })),
          invalid({ min: 0, max: I32 }).map((v) => ({
            value: v,
            field: "gracePeriod",
            rate: { bytesPerSecond: 1, gracePeriod: v },
          })),
        )
        .map(({ value, field, rate }) => ({ given: withKey(key, rate), name: `limits.${key}.${field}`, value })),
    );
    fc.assert(
      fc.property(fc.oneof(...top, ...nested, ...rates), ({ given, name, value }) => {
        expectInvalidOption(() => resolveLimits(given), name, shown(value));
      }),
      { seed: 0x5eed, numRuns: 500 },
    );
  });

  it("an unknown limit throws PEREGRINE_INVALID_OPTION naming it, even one every object inherits", () => {
    fc.assert(
      fc.property(fc.boolean(), unknownKey(DEFAULT_LIMITS), fc.integer(), (inHttp2, key, value) => {
        if (inHttp2) {
          const known = DEFAULT_LIMITS.http2 as unknown as Record<string, unknown>;
          fc.pre(!Object.hasOwn(known, key));
          expectInvalidOption(() => resolveLimits({ http2: withKey(key, value) }), `limits.http2.${key}`);
        } else {
          expectInvalidOption(() => resolveLimits(withKey(key, value)), `limits.${key}`);
        }
      }),
      RUNS,
    );
  });
});

describe("WebApplication.create options (properties)", () => {
  const create = (options: Record<string, unknown>) =>
    WebApplication.create({ logger: silentLogger, server: "node", ...options } as never);

  it("accepts every valid value", () => {
    const options = fc.record(
      {
        urls: fc.array(fc.constantFrom("http://localhost:0", "http://127.0.0.1:0", "http://[::1]:0"), { maxLength: 2 }),
        shutdownTimeout: fc.integer({ min: 0, max: I32 }),
        addServerHeader: fc.boolean(),
        server: fc.constantFrom("node", "native"),
        limits: fc.record(Object.fromEntries(Object.entries(LIMITS).map(([key, rule]) => [key, valid(rule)])), {
          requiredKeys: [],
        }),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(options, (given) => {
        expect(create(given)).toBeInstanceOf(WebApplication);
      }),
      { seed: 0x5eed, numRuns: 100 },
    );
  });

  it("an unknown option throws PEREGRINE_INVALID_OPTION naming it", () => {
    const known = {
      urls: 1,
      server: 1,
      limits: 1,
      shutdownTimeout: 1,
      addServerHeader: 1,
      logger: 1,
      tls: 1,
      endpoints: 1,
    };
    fc.assert(
      fc.property(unknownKey(known), fc.anything(), (key, value) => {
        expectInvalidOption(() => WebApplication.create(withKey(key, value) as never), key);
      }),
      RUNS,
    );
  });

  it("an invalid value throws PEREGRINE_INVALID_OPTION naming the option and the value", () => {
    const cases = fc.oneof(
      // Any finite number of milliseconds >= 0 is valid.
      fc
        .oneof(
          fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY),
          fc.double({ max: -Number.MIN_VALUE }),
          fc.constant(null),
          wrongType,
        )
        .map((value) => ({ option: "shutdownTimeout", value })),
      fc
        .oneof(wrongType, fc.constant(null))
        .filter((v) => typeof v !== "boolean")
        .map((value) => ({ option: "addServerHeader", value })),
      fc
        .oneof(wrongType, fc.constant(null))
        .filter((v) => !(Array.isArray(v) && v.length === 0))
        .map((value) => ({ option: "urls", value })),
      fc
        .oneof(wrongType, fc.constant(null), fc.constantFrom("native ", "Node", ""))
        .filter((v) => v !== "node" && v !== "native")
        .map((value) => ({ option: "server", value })),
      fc
        .oneof(wrongType, fc.constant(null))
        .filter((v) => typeof v !== "object" || v === null)
        .map((value) => ({ option: "logger", value })),
      fc.constantFrom(...Object.keys(LIMITS)).chain((key) =>
        invalid(LIMITS[key] as Rule).map((value) => ({
          option: `limits.${key}`,
          value,
          limits: withKey(key, value),
        })),
      ),
    );
    fc.assert(
      fc.property(cases, (c) => {
        const given = "limits" in c ? { limits: c.limits } : withKey(c.option, c.value);
        expectInvalidOption(() => create(given), c.option, shown(c.value));
      }),
      { seed: 0x5eed, numRuns: 500 },
    );
  });
});
