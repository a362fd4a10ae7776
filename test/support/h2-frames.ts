// Raw HTTP/2 for tests that must put exact frames on the wire (abuse, floods, broken
// framing), which node:http2 will not send. RFC 9113 framing, and just enough HPACK
// (RFC 7541) to write request header blocks; server header blocks are never decoded.
import net from "node:net";

export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** The name of an error code, for assertion messages. */
export function errorName(code: number): string {
  return Object.entries(ErrorCode).find(([, c]) => c === code)?.[0] ?? `0x${code.toString(16)}`;
}

const EMPTY = Buffer.alloc(0);

/** One frame: the 9-byte header (RFC 9113 §4.1) and its payload. */
export function frame(type: number, flags: number, streamId: number, payload: Buffer = EMPTY): Buffer {
  const out = Buffer.allocUnsafe(9 + payload.length);
  out.writeUIntBE(payload.length, 0, 3);
  out[3] = type;
  out[4] = flags;
  out.writeUInt32BE(streamId & 0x7fffffff, 5);
  payload.copy(out, 9);
  return out;
}

export function settingsFrame(settings: [id: number, value: number][] = []): Buffer {
  const payload = Buffer.alloc(settings.length * 6);
  settings.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6);
    payload.writeUInt32BE(value, i * 6 + 2);
  });
  return frame(FrameType.SETTINGS, 0, 0, payload);
}

export function settingsAckFrame(): Buffer {
  return frame(FrameType.SETTINGS, Flag.ACK, 0);
}

export function pingFrame(opaque: bigint, ack = false): Buffer {
  const payload = Buffer.alloc(8);
  payload.writeBigUInt64BE(opaque);
  return frame(FrameType.PING, ack ? Flag.ACK : 0, 0, payload);
}

export function headersFrame(
  streamId: number,
  block: Buffer,
  options: { endStream?: boolean; endHeaders?: boolean } = {},
): Buffer {
  const { endStream = true, endHeaders = true } = options;
  return frame(
    FrameType.HEADERS,
    (endStream ? Flag.END_STREAM : 0) | (endHeaders ? Flag.END_HEADERS : 0),
    streamId,
    block,
  );
}

export function continuationFrame(streamId: number, block: Buffer, endHeaders = false): Buffer {
  return frame(FrameType.CONTINUATION, endHeaders ? Flag.END_HEADERS : 0, streamId, block);
}

export function dataFrame(streamId: number, data: Buffer, endStream = false): Buffer {
  return frame(FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId, data);
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code);
  return frame(FrameType.RST_STREAM, 0, streamId, payload);
}

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(increment & 0x7fffffff);
  return frame(FrameType.WINDOW_UPDATE, 0, streamId, payload);
}

export function goawayFrame(lastStreamId: number, code: number): Buffer {
  const payload = Buffer.alloc(8);
  payload.writeUInt32BE(lastStreamId & 0x7fffffff, 0);
  payload.writeUInt32BE(code, 4);
  return frame(FrameType.GOAWAY, 0, 0, payload);
}

/** HPACK pieces, without Huffman coding (RFC 7541 §5, §6). */
export const hpack = {
  /** An integer with an N-bit prefix; `flags` fills the prefix byte's high bits. */
  integer(value: number, prefixBits: number, flags = 0): Buffer {
    const max = (1 << prefixBits) - 1;
    if (value < max) return Buffer.from([flags | value]);
    const bytes = [flags | max];
    let rest = value - max;
    while (rest >= 128) {
      bytes.push((rest % 128) + 128);
      rest = Math.floor(rest / 128);
    }
    bytes.push(rest);
    return Buffer.from(bytes);
  },

  string(value: string | Buffer): Buffer {
    const bytes = typeof value === "string" ? Buffer.from(value, "latin1") : value;
    return Buffer.concat([hpack.integer(bytes.length, 7, 0x00), bytes]);
  },

  /** Literal field without indexing, new name (§6.2.2): never touches the dynamic table. */
  literal(name: string, value: string | Buffer): Buffer {
    return Buffer.concat([Buffer.from([0x00]), hpack.string(name), hpack.string(value)]);
  },

  /** Literal field with incremental indexing, new name (§6.2.1): adds a dynamic-table entry. */
  literalIndexed(name: string, value: string | Buffer): Buffer {
    return Buffer.concat([Buffer.from([0x40]), hpack.string(name), hpack.string(value)]);
  },

  /** Indexed field (§6.1). Dynamic entries start at 62, newest first. */
  indexed(index: number): Buffer {
    return hpack.integer(index, 7, 0x80);
  },

  /** A request's pseudo-header fields, then `extra`, all literal without indexing. */
  request(method: string, path: string, extra: [string, string | Buffer][] = []): Buffer {
    return Buffer.concat([
      hpack.literal(":method", method),
      hpack.literal(":scheme", "http"),
      hpack.literal(":path", path),
      hpack.literal(":authority", "127.0.0.1"),
      ...extra.map(([n, v]) => hpack.literal(n, v)),
    ]);
  },
};

// HPACK's Huffman codes for the digits (RFC 7541 Appendix B): enough for :status.
const HUFFMAN_DIGITS: [code: number, bits: number][] = [
  [0b00000, 5],
  [0b00001, 5],
  [0b00010, 5],
  [0b011001, 6],
  [0b011010, 6],
  [0b011011, 6],
  [0b011100, 6],
  [0b011101, 6],
  [0b011110, 6],
  [0b011111, 6],
];

function huffmanDigits(bytes: Buffer): string | undefined {
  let bits = "";
  for (const b of bytes) bits += b.toString(2).padStart(8, "0");
  let out = "";
  let at = 0;
  while (at < bits.length) {
    const rest = bits.slice(at);
    // What is left is EOS padding: fewer than 8 bits, all ones.
    if (rest.length < 8 && /^1+$/.test(rest)) return out;
    const digit = HUFFMAN_DIGITS.findIndex(
      ([code, n]) => rest.length >= n && Number.parseInt(rest.slice(0, n), 2) === code,
    );
    if (digit < 0) return undefined;
    out += String(digit);
    at += (HUFFMAN_DIGITS[digit] as [number, number])[1];
  }
  return out;
}

const STATIC_STATUS: Record<number, number> = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };

/**
 * The :status of a response HEADERS frame, read from the block's first field: a
 * static-table status, or a literal with the :status name (index 8). `undefined` for
 * what this small reader cannot decode (a status from the dynamic table).
 */
export function responseStatus(f: Frame): number | undefined {
  const block = f.payload;
  const first = block[0];
  if (first === undefined) return undefined;
  if (first & 0x80) return STATIC_STATUS[first & 0x7f];
  const nameIndex = (first & 0xc0) === 0x40 ? first & 0x3f : (first & 0xe0) === 0x00 ? first & 0x0f : -1;
  if (nameIndex !== 8) return undefined;
  const head = block[1] ?? 0;
  const value = block.subarray(2, 2 + (head & 0x7f));
  const digits = head & 0x80 ? huffmanDigits(value) : value.toString("latin1");
  return digits === undefined ? undefined : Number(digits);
}

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  /** The payload, except for DATA, whose bytes are only counted. */
  payload: Buffer;
  length: number;
}

export interface GoAway {
  lastStreamId: number;
  code: number;
  debug: string;
}

/**
 * A raw HTTP/2 client connection over plain TCP (h2c with prior knowledge). It sends
 * the preface and a SETTINGS frame, acknowledges the server's SETTINGS, and records
 * what the server sends: control frames in full, DATA only by size.
 */
export class H2Wire {
  readonly socket: net.Socket;
  /** Frames received, except PING and SETTINGS acknowledgements (only counted). DATA frames keep no payload. */
  readonly frames: Frame[] = [];
  /** Frames received, by type. */
  readonly counts = new Map<number, number>();
  /** DATA payload bytes received, by stream. */
  readonly dataBytes = new Map<number, number>();
  #buffer: Buffer = Buffer.alloc(0);
  #closed = false;
  #closedAt = 0;
  #waiters: (() => void)[] = [];
  #autoAck: boolean;

  private constructor(socket: net.Socket, autoAck: boolean) {
    this.socket = socket;
    this.#autoAck = autoAck;
    socket.on("data", (chunk: Buffer) => this.#receive(chunk));
    socket.on("close", () => {
      this.#closed = true;
      this.#closedAt = performance.now();
      this.#wake();
    });
    socket.on("error", () => {});
  }

  /**
   * Connects, sends the preface and SETTINGS with `settings`. `autoAck: false` leaves
   * the server's SETTINGS unacknowledged. `read: false` never reads the socket, so the
   * server's writes back up in TCP.
   */
  static connect(
    port: number,
    options: { settings?: [number, number][]; autoAck?: boolean; read?: boolean } = {},
  ): Promise<H2Wire> {
    const { settings = [], autoAck = true, read = true } = options;
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        const wire = new H2Wire(socket, autoAck);
        if (!read) socket.pause();
        socket.write(Buffer.concat([PREFACE, settingsFrame(settings)]));
        resolve(wire);
      });
      socket.once("error", reject);
    });
  }

  #receive(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    let offset = 0;
    while (this.#buffer.length - offset >= 9) {
      const length = this.#buffer.readUIntBE(offset, 3);
      if (this.#buffer.length - offset < 9 + length) break;
      const type = this.#buffer[offset + 3] as number;
      const flags = this.#buffer[offset + 4] as number;
      const streamId = this.#buffer.readUInt32BE(offset + 5) & 0x7fffffff;
      const start = offset + 9;
      offset = start + length;
      this.counts.set(type, (this.counts.get(type) ?? 0) + 1);
      if (type === FrameType.DATA) {
        this.dataBytes.set(streamId, (this.dataBytes.get(streamId) ?? 0) + length);
        this.frames.push({ type, flags, streamId, payload: EMPTY, length });
        continue;
      }
      // Acknowledgements are only counted: floods bring them by the hundred thousand.
      if ((type === FrameType.PING || type === FrameType.SETTINGS) && flags & Flag.ACK) continue;
      const payload = Buffer.from(this.#buffer.subarray(start, offset));
      this.frames.push({ type, flags, streamId, payload, length });
      if (type === FrameType.SETTINGS && !(flags & Flag.ACK) && this.#autoAck && !this.socket.destroyed) {
        this.socket.write(settingsAckFrame());
      }
    }
    this.#buffer = this.#buffer.subarray(offset);
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** performance.now() when the server closed the connection, or 0. */
  get closedAt(): number {
    return this.#closedAt;
  }

  count(type: number): number {
    return this.counts.get(type) ?? 0;
  }

  /** The first GOAWAY received, decoded. */
  get goaway(): GoAway | undefined {
    const f = this.frames.find((x) => x.type === FrameType.GOAWAY);
    if (f === undefined) return undefined;
    return {
      lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff,
      code: f.payload.readUInt32BE(4),
      debug: f.payload.subarray(8).toString("latin1"),
    };
  }

  /** RST_STREAM codes received, by stream. */
  get resets(): Map<number, number> {
    const out = new Map<number, number>();
    for (const f of this.frames) if (f.type === FrameType.RST_STREAM) out.set(f.streamId, f.payload.readUInt32BE(0));
    return out;
  }

  /** Response status by stream, for the statuses `responseStatus` can read. */
  get statuses(): Map<number, number | undefined> {
    const out = new Map<number, number | undefined>();
    for (const f of this.frames)
      if (f.type === FrameType.HEADERS && !out.has(f.streamId)) out.set(f.streamId, responseStatus(f));
    return out;
  }

  /** Streams that got a HEADERS frame (a response). */
  get answered(): Set<number> {
    return new Set(this.frames.filter((f) => f.type === FrameType.HEADERS).map((f) => f.streamId));
  }

  /** Waits until `predicate` holds or the server closes; false on timeout or close. */
  async waitFor(predicate: (wire: H2Wire) => boolean, timeoutMs = 5000): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (!predicate(this)) {
      const left = deadline - performance.now();
      if (this.#closed || left <= 0) return predicate(this);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  /** Waits for the server to close the connection; false on timeout. */
  waitForClose(timeoutMs = 5000): Promise<boolean> {
    return this.waitFor((w) => w.closed, timeoutMs);
  }

  /** Writes and resolves once the socket can take more (or has closed). */
  write(data: Buffer): Promise<void> {
    if (this.socket.destroyed || this.socket.writableEnded) return Promise.resolve();
    if (this.socket.write(data)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off("drain", done);
        this.socket.off("close", done);
        resolve();
      };
      this.socket.once("drain", done);
      this.socket.once("close", done);
    });
  }

  /**
   * Writes `batches` batches made by `make(i)`, each after the previous one drained,
   * until done, the server closes, or `timeoutMs` passes (also while a write waits
   * for the server to read). Resolves with how many batches the socket took.
   */
  async flood(make: (batch: number) => Buffer, batches: number, timeoutMs = 3000): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    let sent = 0;
    // A GOAWAY ends the flood: a peer that kept sending would make the server give up
    // its lingering close (1 MiB) and reset the connection, and a loaded test process
    // could then lose the GOAWAY it had not read yet.
    while (
      sent < batches &&
      this.goaway === undefined &&
      !this.#closed &&
      !this.socket.destroyed &&
      performance.now() < deadline
    ) {
      let timer: NodeJS.Timeout | undefined;
      const drained = await Promise.race([
        this.write(make(sent)).then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), deadline - performance.now());
        }),
      ]);
      clearTimeout(timer);
      if (!drained) break;
      sent++;
      // Let the socket's events (data, close) run between batches.
      if (sent % 8 === 0) await new Promise((r) => setImmediate(r));
    }
    return sent;
  }

  close(): void {
    this.socket.destroy();
  }
}
