// Property test for the tape reader (packages/peregrine/src/native/tape.ts): request
// records decode to the targets the core wrote, in order. The reader shares the
// string of the last target when the next one has the same bytes, so runs of targets
// of equal length, alike and not, are the interesting input.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type RequestRecord, readTape, type TapeSink } from "../../packages/peregrine/src/native/tape.js";
import { requestHead } from "../support/tape.js";

const RUNS = { seed: 0x5eed, numRuns: 300 };

/** A request record as crates/peregrine-node/src/tape.rs writes it (no headers). */
function requestRecord(id: number, target: string): Buffer {
  const body = requestHead(target, { connectionId: id * 3 });
  const head = Buffer.alloc(9);
  head[0] = 1;
  head.writeUInt32LE(id, 1);
  head.writeUInt32LE(body.length, 5);
  return Buffer.concat([head, body]);
}

function collect(tape: Buffer): { id: number; target: string; connectionId: number }[] {
  const seen: { id: number; target: string; connectionId: number }[] = [];
  const sink = {
    request(id: number, record: RequestRecord) {
      seen.push({ id, target: record.target, connectionId: record.connectionId });
    },
  } as unknown as TapeSink;
  readTape([tape], sink);
  return seen;
}

const pathChar = fc.constantFrom(..."/abcxyz09?=&%.-_~");
const target = fc.oneof(
  fc.string({ unit: pathChar, minLength: 1, maxLength: 6 }).map((s) => `/${s}`),
  fc.string({ unit: pathChar, minLength: 60, maxLength: 70 }).map((s) => `/${s}`),
);

describe("tape (properties)", () => {
  it("request records give back their targets, in order, across batches", () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(target, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 4 }),
        (batches) => {
          let id = 1;
          for (const targets of batches) {
            const first = id;
            const tape = Buffer.concat(targets.map((t) => requestRecord(id++, t)));
            expect(collect(tape)).toEqual(
              targets.map((t, i) => ({ id: first + i, target: t, connectionId: (first + i) * 3 })),
            );
          }
        },
      ),
      RUNS,
    );
  });
});
