import type { BodyChunk } from "../features/index.js";
import type { HeaderDictionary } from "../http/headers.js";

/**
 * Bytes before a record's headers: u32 id, u16 status, u32 header byte count, u32 body
 * byte count (BODY_IN_ARRAY: the body is the next entry of the bodies array). The
 * format is described in crates/peregrine-node/src/batch.rs; the two must agree.
 */
const RECORD_HEAD = 14;
const BODY_IN_ARRAY = 0xffff_ffff;

/**
 * The field table: a header field (name and value) seen before is sent as its u16
 * index into a table the binding keeps, instead of being encoded, parsed and checked
 * again for every response. FIELD_TABLE_SIZE indexes; LITERAL and DEFINE tag fields
 * sent in full (DEFINE also stores the field at the index that follows the tag).
 */
const FIELD_TABLE_SIZE = 1024;
const LITERAL = 0xffff;
const DEFINE = 0xfffe;
/**
 * A field is indexed the second time it is seen, so that values that never repeat
 * (request ids, cookies) do not take indexes. Longer values are never indexed: they
 * seldom repeat, and each indexed field holds a copy in the binding.
 */
const SEEN_ONCE = -1;
const INDEXED_VALUE_MAX = 128;
/** Fields remembered (indexed or seen once) before the table starts over. */
const REMEMBERED_MAX = 4 * FIELD_TABLE_SIZE;
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

function viewOf(buffer: Buffer): DataView {
  return new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/**
 * Takes a batch: the records, and the bodies not copied into them (crates/peregrine-node
 * respond_batch). Returns false when the binding did not take the whole batch: the
 * field definitions in it are then lost, and the table starts over.
 */
export type SendBatch = (records: Buffer, bodies: (BodyChunk | undefined)[]) => boolean;

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
  /** The lengths and ids go through a DataView, whose writes inline (Buffer's do not). */
  #view = viewOf(this.#records);
  #length = 0;
  #bodies: (BodyChunk | undefined)[] = [];
  #scheduled = false;
  /** Where the next header field's byte goes. */
  #cursor = 0;
  /** Field indexes by name and value; SEEN_ONCE for a field not indexed yet. */
  #fields = new Map<string, Map<string, number>>();
  #remembered = 0;
  #nextIndex = 0;
  /**
   * The last indexed field written, compared first: apps set the same constant strings
   * on every response (V8 compares equal pointers at once), and a match spares the two
   * Map lookups.
   */
  #lastName = "";
  #lastValue = "";
  #lastIndex = -1;

  constructor(send: SendBatch) {
    this.#send = send;
  }

  /** The status is valid; the headers' names and values were checked when set. */
  add(id: number, status: number, headers: HeaderDictionary | undefined, body: BodyChunk | undefined): void {
    const at = this.#length;
    let end = at + RECORD_HEAD;
    this.#ensure(end, at);
    if (headers !== undefined) {
      // Written straight from the dictionary: forEachStored hands over name and value
      // without an entry array.
      this.#cursor = end;
      headers.forEachStored(this.#writeEntry);
      end = this.#cursor;
    }
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const inlineMax = body === undefined ? 0 : typeof body === "string" ? body.length * 3 : body.byteLength;
    const inline = inlineMax <= INLINE_BODY_MAX;
    if (inline) this.#ensure(end + inlineMax, end);
    const records = this.#records;
    const view = this.#view;
    view.setUint32(at, id, true);
    view.setUint16(at + 4, status, true);
    view.setUint32(at + 6, end - at - RECORD_HEAD, true);
    if (!inline) {
      view.setUint32(at + 10, BODY_IN_ARRAY, true);
      this.#bodies.push(body);
    } else {
      const bodyStart = end;
      if (typeof body === "string") end += writeUtf8(records, body, end);
      else if (body !== undefined) {
        records.set(body, end);
        end += body.byteLength;
      }
      view.setUint32(at + 10, end - bodyStart, true);
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

  #writeField(name: string, value: string): void {
    let end = this.#cursor;
    // The longest form: tag, index, two lengths, and UTF-8 at 3 bytes per unit at most.
    this.#ensure(end + 12 + (name.length + value.length) * 3, end);
    const records = this.#records;
    let tag = LITERAL;
    let index = 0;
    if (this.#lastIndex >= 0 && name === this.#lastName && value === this.#lastValue) {
      records[end] = this.#lastIndex & 0xff;
      records[end + 1] = this.#lastIndex >>> 8;
      this.#cursor = end + 2;
      return;
    }
    if (value.length <= INDEXED_VALUE_MAX) {
      const known = this.#fields.get(name)?.get(value);
      if (known !== undefined && known !== SEEN_ONCE) {
        records[end] = known & 0xff;
        records[end + 1] = known >>> 8;
        this.#cursor = end + 2;
        this.#lastName = name;
        this.#lastValue = value;
        this.#lastIndex = known;
        return;
      }
      if (known === SEEN_ONCE) {
        index = this.#index(name, value);
        tag = DEFINE;
      } else this.#remember(name, value, SEEN_ONCE);
    }
    records[end] = tag & 0xff;
    records[end + 1] = tag >>> 8;
    end += 2;
    if (tag === DEFINE) {
      records[end] = index & 0xff;
      records[end + 1] = index >>> 8;
      end += 2;
    }
    end = this.#writeString(records, name, end);
    this.#cursor = this.#writeString(records, value, end);
  }

  /** u32 byte length, then UTF-8; returns the end. */
  #writeString(records: Buffer, text: string, at: number): number {
    const bytes = writeUtf8(records, text, at + 4);
    this.#view.setUint32(at, bytes, true);
    return at + 4 + bytes;
  }

  /** The next free index for the field; when none is left, the table starts over. */
  #index(name: string, value: string): number {
    if (this.#nextIndex === FIELD_TABLE_SIZE) this.forgetFields();
    const index = this.#nextIndex++;
    this.#remember(name, value, index);
    return index;
  }

  #remember(name: string, value: string, index: number): void {
    let values = this.#fields.get(name);
    if (values?.has(value) !== true) {
      if (this.#remembered === REMEMBERED_MAX) {
        this.forgetFields();
        values = undefined;
      }
      this.#remembered++;
    }
    if (values === undefined) {
      values = new Map();
      this.#fields.set(name, values);
    }
    values.set(value, index);
  }

  /**
   * Starts the table over: every field is sent in full again, and indexes are defined
   * anew before any reference to them, so whatever the binding holds at an index is
   * never read before it is replaced.
   */
  forgetFields(): void {
    this.#fields.clear();
    this.#remembered = 0;
    this.#nextIndex = 0;
    this.#lastIndex = -1;
  }

  /** Sends what is queued now; also called before the server closes. */
  readonly flush = (): void => {
    this.#scheduled = false;
    if (this.#length === 0) return;
    const records = this.#records.subarray(0, this.#length);
    const bodies = this.#bodies;
    this.#length = 0;
    this.#bodies = [];
    if (!this.#send(records, bodies)) this.forgetFields();
  };

  /** Grows the buffer to hold `end` bytes, keeping the `written` bytes before it. */
  #ensure(end: number, written: number): void {
    if (end <= this.#records.length) return;
    const grown = Buffer.allocUnsafe(Math.max(end, this.#records.length * 2));
    this.#records.copy(grown, 0, 0, written);
    this.#records = grown;
    this.#view = viewOf(grown);
  }
}
