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

  it("the response batch carries each response's headers, in UTF-8, however it grows and whatever it indexes", () => {
    // Values from a small pool repeat, so fields get indexed; long ones grow the buffer.
    const pooled = fc.constantFrom("text/plain", "no-cache", "gzip", "é", "");
    const value = fc.oneof(pooled, fc.string({ maxLength: 40 }), fc.string({ minLength: 1000, maxLength: 3000 }));
    const name = fc.oneof(fc.constantFrom("content-type", "cache-control", "vary"), tokenName);
    const response = fc.record({
      fields: fc.array(
        fc.tuple(
          name,
          value.filter((v) => !INVALID_VALUE.test(v)),
        ),
        { maxLength: 6 },
      ),
      body: fc.string({ maxLength: 20 }),
    });
    // Some batches are lost (the binding refused them whole): their definitions with them.
    const batches = fc.array(
      fc.record({ responses: fc.array(response, { minLength: 1, maxLength: 12 }), lost: fc.boolean() }),
      {
        minLength: 1,
        maxLength: 6,
      },
    );
    fc.assert(
      fc.property(batches, (runs) => {
        const table = new BindingTable();
        let sent: Buffer | undefined;
        let deliver = true;
        const batch = new ResponseBatch((records) => {
          sent = Buffer.from(records);
          return deliver;
        });
        for (const { responses, lost } of runs) {
          const dictionaries = responses.map(({ fields }) => {
            const headers = new HeaderDictionary();
            for (const [n, v] of fields) headers.append(n, v);
            return headers;
          });
          responses.forEach(({ body }, i) => {
            batch.add(i + 1, 200 + i, dictionaries[i], body);
          });
          deliver = !lost;
          batch.flush();
          if (sent === undefined) throw new Error("nothing was sent");
          if (lost) continue;
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
            const expected = [...(dictionaries[i] ?? [])].map(([n, v]) => `${n}: ${v}`);
            expect(table.decode(records.subarray(headersAt, headersAt + headerBytes))).toEqual(expected);
            const bodyAt = headersAt + headerBytes;
            expect(records.subarray(bodyAt, bodyAt + bodyBytes)).toEqual(Buffer.from(body, "utf8"));
            at = bodyAt + bodyBytes;
          });
          expect(at).toBe(sent.length);
        }
      }),
      // No shrinking: a counterexample of kilobyte strings shrinks for minutes.
      { ...RUNS, numRuns: 200, endOnFailure: true },
    );
  });

  it("the field table starts over when full, and every reference follows its definition", () => {
    const table = new BindingTable();
    let sent: Buffer | undefined;
    const batch = new ResponseBatch((records) => {
      sent = Buffer.from(records);
      return true;
    });
    // 3,000 distinct fields, each sent three times: far more than the 1,024 indexes.
    let indexedOnce = 0;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 3000; i++) {
        const headers = new HeaderDictionary();
        headers.set("x-n", String(i));
        batch.add(1, 200, headers, "");
        batch.flush();
        const block = (sent as Buffer).subarray(14, 14 + (sent as Buffer).readUInt32LE(6));
        expect(table.decode(block)).toEqual([`x-n: ${i}`]);
        if (block.length === 2) indexedOnce++;
      }
    }
    // References were used, and the table was redefined as it wrapped.
    expect(indexedOnce).toBeGreaterThan(0);
    expect(table.definitions).toBeGreaterThan(1024);
  });
});

/** The binding's side of the field table (crates/peregrine-node/src/batch.rs), for checking what JS writes. */
class BindingTable {
  readonly #slots: (string | undefined)[] = [];
  definitions = 0;

  decode(block: Buffer): string[] {
    const fields: string[] = [];
    let at = 0;
    const string = (): string => {
      const length = block.readUInt32LE(at);
      const text = block.subarray(at + 4, at + 4 + length).toString("utf8");
      at += 4 + length;
      return text;
    };
    while (at < block.length) {
      const tag = block.readUInt16LE(at);
      at += 2;
      if (tag < 1024) {
        const field = this.#slots[tag];
        if (field === undefined) throw new Error(`field ${tag} is referenced before it is defined`);
        fields.push(field);
        continue;
      }
      expect([0xffff, 0xfffe]).toContain(tag);
      let index: number | undefined;
      if (tag === 0xfffe) {
        index = block.readUInt16LE(at);
        at += 2;
        expect(index).toBeLessThan(1024);
      }
      const field = `${string()}: ${string()}`;
      if (index !== undefined) {
        this.#slots[index] = field;
        this.definitions++;
      }
      fields.push(field);
    }
    return fields;
  }
}
