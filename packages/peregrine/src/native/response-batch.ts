import type { BodyChunk } from "../features/index.js";
import type { HeaderDictionary } from "../http/headers.js";

/**
 * Bytes before a record's headers: u32 id, u16 status, u32 header byte count, u32 body
 * byte count (BODY_IN_ARRAY: the body is the next entry of the bodies array).
 */
const RECORD_HEAD = 14;
const BODY_IN_ARRAY = 0xffff_ffff;
/**
 * Bodies up to this size are copied into the batch: a copy is cheaper than the core
 * converting one more JS value. Larger Buffers cross as they are, and the core sends
 * them without copying from 64 KiB up (crates/peregrine-node convert::bytes).
 */
const INLINE_BODY_MAX = 16 * 1024;
/** The batch buffer's first size; it grows to the largest batch seen. */
const INITIAL_SIZE = 16 * 1024;

/**
 * Strings up to this long are copied in by a JS loop while they are ASCII, as most
 * header blocks and small bodies are. Buffer#write crosses into C++ for each call,
 * which cost more than the copy for strings this short (crossing benchmark: about
 * a tenth of the JS thread went to the two writes per response).
 */
const ASCII_LOOP_MAX = 128;

/** Writes `text` as UTF-8 at `at`; returns the byte count. `buffer` has room for 3 bytes per unit. */
function writeUtf8(buffer: Buffer, text: string, at: number): number {
  const length = text.length;
  if (length <= ASCII_LOOP_MAX) {
    let i = 0;
    for (; i < length; i++) {
      const unit = text.charCodeAt(i);
      if (unit >= 0x80) break;
      buffer[at + i] = unit;
    }
    if (i === length) return length;
    // Not ASCII after all: the rest goes through the UTF-8 encoder.
    return i + buffer.write(text.slice(i), at + i, "utf8");
  }
  return buffer.write(text, at, "utf8");
}

/** Takes a batch: the records, and the bodies not copied into them (crates/peregrine-node respond_batch). */
export type SendBatch = (records: Buffer, bodies: (BodyChunk | undefined)[]) => void;

/**
 * Whole responses finished in one JS turn, handed to the core together. One native
 * call per turn instead of one per response saves the per-call overhead (argument
 * conversion, unwrapping the server object), and the I/O threads pick all the responses up in one pass instead of
 * being woken for each. The batch goes out from setImmediate, which runs once the
 * turn's promise jobs (where handlers finish) have run, in the same event-loop
 * iteration, so it adds no wait of its own.
 */
export class ResponseBatch {
  readonly #send: SendBatch;
  #records: Buffer = Buffer.allocUnsafe(INITIAL_SIZE);
  #length = 0;
  #bodies: (BodyChunk | undefined)[] = [];
  #scheduled = false;
  /** Where the current record's header fields start, and where the next byte goes. */
  #fieldsAt = 0;
  #cursor = 0;

  constructor(send: SendBatch) {
    this.#send = send;
  }

  /** The status is valid; the headers' names and values were checked when set. */
  add(id: number, status: number, headers: HeaderDictionary | undefined, body: BodyChunk | undefined): void {
    const at = this.#length;
    let end = at + RECORD_HEAD;
    this.#ensure(end, at);
    const entries = headers?.storedEntries();
    if (entries !== undefined) {
      // Written straight from the dictionary, in the packed form HeaderDictionary.pack()
      // makes: building the string first cost a concatenation per header and a flatten
      // before the copy. forEach hands over name and value without an entry array.
      this.#fieldsAt = end;
      this.#cursor = end;
      entries.forEach(this.#writeEntry);
      end = this.#cursor;
    }
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const inlineMax = body === undefined ? 0 : typeof body === "string" ? body.length * 3 : body.byteLength;
    const inline = inlineMax <= INLINE_BODY_MAX;
    if (inline) this.#ensure(end + inlineMax, end);
    const records = this.#records;
    records.writeUInt32LE(id, at);
    records.writeUInt16LE(status, at + 4);
    records.writeUInt32LE(end - at - RECORD_HEAD, at + 6);
    if (!inline) {
      records.writeUInt32LE(BODY_IN_ARRAY, at + 10);
      this.#bodies.push(body);
    } else {
      const bodyStart = end;
      if (typeof body === "string") end += writeUtf8(records, body, end);
      else if (body !== undefined) {
        records.set(body, end);
        end += body.byteLength;
      }
      records.writeUInt32LE(end - bodyStart, at + 10);
    }
    this.#length = end;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.flush);
    }
  }

  readonly #writeEntry = (value: string | readonly string[], name: string): void => {
    if (typeof value === "string") this.#writeField(name, value);
    else for (const v of value) this.#writeField(name, v);
  };

  /** `\n` between fields, then `name\nvalue`, UTF-8. */
  #writeField(name: string, value: string): void {
    let end = this.#cursor;
    this.#ensure(end + (name.length + value.length) * 3 + 2, end);
    const records = this.#records;
    if (end !== this.#fieldsAt) records[end++] = 0x0a;
    end += writeUtf8(records, name, end);
    records[end++] = 0x0a;
    this.#cursor = end + writeUtf8(records, value, end);
  }

  /** Sends what is queued now; also called before the server closes. */
  readonly flush = (): void => {
    this.#scheduled = false;
    if (this.#length === 0) return;
    const records = this.#records.subarray(0, this.#length);
    const bodies = this.#bodies;
    this.#length = 0;
    this.#bodies = [];
    this.#send(records, bodies);
  };

  /** Grows the buffer to hold `end` bytes, keeping the `written` bytes before it. */
  #ensure(end: number, written: number): void {
    if (end <= this.#records.length) return;
    const grown = Buffer.allocUnsafe(Math.max(end, this.#records.length * 2));
    this.#records.copy(grown, 0, 0, written);
    this.#records = grown;
  }
}
