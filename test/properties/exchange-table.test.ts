// Property test for the native server's table of exchanges in flight
// (packages/peregrine/src/native/exchange-table.ts): whatever the ids and the order of
// sets and deletes, including ids 4,096 apart that share a slot, it answers as a Map.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ExchangeTable } from "../../packages/peregrine/src/native/exchange-table.js";

const RUNS = { seed: 0x5eed, numRuns: 300 };

/** Ids near a few bases that are multiples of the slot count apart, so slots collide. */
const id = fc
  .tuple(fc.constantFrom(1, 4097, 8193, 1_000_001, 0xffff_f000), fc.integer({ min: 0, max: 5 }))
  .map(([base, offset]) => base + offset);
const op = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), id }),
  fc.record({ kind: fc.constant("delete" as const), id }),
  fc.record({ kind: fc.constant("get" as const), id }),
);

describe("exchange table (properties)", () => {
  it("answers get, delete and size as a Map would, and drain returns what is left", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const table = new ExchangeTable<{ id: number; n: number }>();
        const model = new Map<number, { id: number; n: number }>();
        ops.forEach((o, n) => {
          if (o.kind === "set") {
            const value = { id: o.id, n };
            table.set(value);
            model.set(o.id, value);
          } else if (o.kind === "delete") {
            expect(table.delete(o.id)).toBe(model.delete(o.id));
          } else {
            expect(table.get(o.id)).toBe(model.get(o.id));
          }
          expect(table.size).toBe(model.size);
        });
        const left = table.drain().sort((a, b) => a.id - b.id);
        expect(left).toEqual([...model.values()].sort((a, b) => a.id - b.id));
        expect(table.size).toBe(0);
        for (const key of model.keys()) expect(table.get(key)).toBeUndefined();
      }),
      RUNS,
    );
  });
});
