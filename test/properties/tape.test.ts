// Property test for the tape reader (packages/peregrine/src/native/tape.ts): request
// records decode to the targets the core wrote, in order. The reader shares the
// string of the last target when the next one has the same bytes, so runs of targets
// of equal length, alike and not, are the interesting input.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Kind, RequestRecord, readTape, type TapeSink } from "../../packages/peregrine/src/native/tape.js";
import { requestHead } from "../support/tape.js";

const RUNS = { seed: 0x5eed, numRuns: 300 };

/** A record as crates/peregrine-node/src/tape.rs writes it: kind, id, length, payload. */
function tapeRecord(kind: number, id: number, body: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head[0] = kind;
  head.writeUInt32LE(id, 1);
  head.writeUInt32LE(body.length, 5);
  return Buffer.concat([head, body]);
}

/** A request record (no headers). */
function requestRecord(id: number, target: string): Buffer {
  return tapeRecord(Kind.Request, id, requestHead(target, { connectionId: id * 3 }));
}

/** A body error's or a refusal's payload: u16+code, u16+message. */
function errorPayload(code: string, message: string): Buffer {
  const text = (s: string, encoding: BufferEncoding) => {
    const bytes = Buffer.from(s, encoding);
    const length = Buffer.alloc(2);
    length.writeUInt16LE(bytes.length);
    return Buffer.concat([length, bytes]);
  };
  return Buffer.concat([text(code, "latin1"), text(message, "utf8")]);
}

function collect(tape: Buffer): { id: number; target: string; connectionId: number }[] {
  const seen: { id: number; target: string; connectionId: number }[] = [];
  const sink = {
    request(id: number, tape: Buffer, view: DataView, at: number) {
      const record = new RequestRecord(tape, view, at);
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

  it("body errors and refusals reach the sink with their exchange, code and message", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), fc.nat({ max: 0xffff_ffff }), (message, id) => {
        const seen: unknown[] = [];
        const sink = {
          bodyError: (...args: unknown[]) => seen.push(["bodyError", ...args]),
          refused: (...args: unknown[]) => seen.push(["refused", ...args]),
        } as unknown as TapeSink;
        const tape = Buffer.concat([
          tapeRecord(Kind.BodyError, id, errorPayload("PEREGRINE_BODY_READ_FAILED", message)),
          tapeRecord(Kind.Refused, id, errorPayload("PEREGRINE_INVALID_HEADER", message)),
        ]);
        readTape([tape], sink);
        expect(seen).toEqual([
          ["bodyError", id, "PEREGRINE_BODY_READ_FAILED", message],
          ["refused", id, "PEREGRINE_INVALID_HEADER", message],
        ]);
      }),
      RUNS,
    );
  });
});
