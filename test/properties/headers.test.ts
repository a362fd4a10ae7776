// Property tests for response headers on their way to the core: HeaderDictionary's
// checks of names and values (packages/peregrine/src/http/headers.ts, which caches
// names it has checked and scans short values by loop), and the response batch
// (native/response-batch.ts), which writes the headers straight into its records in
// the packed form the core parses.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HeaderDictionary } from "../../packages/peregrine/src/http/headers.js";
import { ResponseBatch } from "../../packages/peregrine/src/native/response-batch.js";

const RUNS = { seed: 0x5eed, numRuns: 500 };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const INVALID_VALUE = /[\0-\x08\x0a-\x1f\x7f]/;

const tokenChar = fc.constantFrom(..."!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
const tokenName = fc.string({ unit: tokenChar, minLength: 1, maxLength: 16 });
const anyName = fc.oneof(tokenName, fc.string({ maxLength: 8 }), fc.string({ unit: "binary", maxLength: 8 }));
/** Values around the 64-unit loop limit, with control characters now and then. */
const anyValue = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.string({ unit: "binary", maxLength: 80 }),
  fc
    .tuple(fc.string({ maxLength: 70 }), fc.integer({ min: 0, max: 0x7f }), fc.string({ maxLength: 70 }))
    .map(([a, c, b]) => a + String.fromCharCode(c) + b),
);

function settles(action: () => void): "ok" | string {
  try {
    action();
    return "ok";
  } catch (error) {
    return (error as { code?: string }).code ?? "thrown";
  }
}

describe("response headers (properties)", () => {
  it("a name is taken, in lower case, exactly when it is a token, the first time and every time after", () => {
    fc.assert(
      fc.property(anyName, (name) => {
        const valid = TOKEN.test(name);
        for (let i = 0; i < 2; i++) {
          const headers = new HeaderDictionary();
          const outcome = settles(() => headers.set(name, "v"));
          expect(outcome).toBe(valid ? "ok" : "PEREGRINE_INVALID_HEADER");
          if (valid) {
            expect([...headers.keys()]).toEqual([name.toLowerCase()]);
            expect(headers.get(name)).toBe("v");
            expect(headers.has(name.toUpperCase())).toBe(true);
          }
        }
      }),
      RUNS,
    );
  });

  it("a value is refused exactly when it has a control character other than tab, short or long", () => {
    fc.assert(
      fc.property(anyValue, (value) => {
        const expected = INVALID_VALUE.test(value) ? "PEREGRINE_INVALID_HEADER" : "ok";
        expect(settles(() => new HeaderDictionary().set("x-v", value))).toBe(expected);
        expect(settles(() => new HeaderDictionary().append("x-v", value))).toBe(expected);
      }),
      RUNS,
    );
  });

  it("the response batch carries each response's headers as pack() writes them, in UTF-8, however it grows", () => {
    const value = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ minLength: 1000, maxLength: 3000 }));
    const response = fc.record({
      fields: fc.array(
        fc.tuple(
          tokenName,
          value.filter((v) => !INVALID_VALUE.test(v)),
        ),
        { maxLength: 6 },
      ),
      body: fc.string({ maxLength: 20 }),
    });
    fc.assert(
      fc.property(fc.array(response, { minLength: 1, maxLength: 12 }), (responses) => {
        const dictionaries = responses.map(({ fields }) => {
          const headers = new HeaderDictionary();
          for (const [name, v] of fields) headers.append(name, v);
          return headers;
        });
        let sent: Buffer | undefined;
        const batch = new ResponseBatch((records) => {
          sent = Buffer.from(records);
        });
        responses.forEach(({ body }, i) => {
          batch.add(i + 1, 200 + i, dictionaries[i], body);
        });
        batch.flush();
        if (sent === undefined) throw new Error("nothing was sent");
        let at = 0;
        responses.forEach(({ body }, i) => {
          const records = sent as Buffer;
          const headerBytes = records.readUInt32LE(at + 6);
          const bodyBytes = records.readUInt32LE(at + 10);
          // A bad length would send the walk astray: stop at the first.
          expect(at + 14 + headerBytes + bodyBytes).toBeLessThanOrEqual(records.length);
          expect(records.readUInt32LE(at)).toBe(i + 1);
          expect(records.readUInt16LE(at + 4)).toBe(200 + i);
          const headersAt = at + 14;
          expect(records.subarray(headersAt, headersAt + headerBytes).toString("utf8")).toBe(dictionaries[i]?.pack());
          const bodyAt = headersAt + headerBytes;
          expect(records.subarray(bodyAt, bodyAt + bodyBytes)).toEqual(Buffer.from(body, "utf8"));
          at = bodyAt + bodyBytes;
        });
        expect(at).toBe(sent.length);
      }),
      // No shrinking: a counterexample of kilobyte strings shrinks for minutes.
      { ...RUNS, numRuns: 200, endOnFailure: true },
    );
  });
});
