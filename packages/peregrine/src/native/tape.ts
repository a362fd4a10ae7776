/**
 * Reads the tape the native core hands over per batch: a Buffer of binary event
 * records. The format is defined in crates/peregrine-node/src/tape.rs; keep the two in
 * step. Request records are decoded lazily: nothing up front but what the exchange
 * needs, the method and target when the app asks for the request, headers and
 * addresses when it reads them.
 *
 * TLS details cross once per connection: a `Tls` record (connection id, protocol,
 * cipher suite, ALPN, SNI, client certificate DER) comes just before the connection's
 * first `Request`; the server keeps it by connection id until `ConnectionClosed`.
 * Request records carry the HTTP/2 stream id (0 when there is none).
 */

export const Kind = {
  Request: 1,
  Data: 2,
  Trailers: 3,
  End: 4,
  BodyError: 5,
  WriteReady: 6,
  Aborted: 7,
  Stopped: 8,
  /** A TLS connection's details, just before its first request (see tape.rs). */
  Tls: 9,
  ConnectionClosed: 10,
  /** The edge refused a request or connection before the app saw it. */
  Rejected: 11,
  /** A whole response the core could not send; its exchange was aborted. */
  Refused: 12,
} as const;

const FLAG_BODY_EMPTY = 1;
const FLAG_HTTPS = 2;

/** A refusal by the native edge: the reason code (docs/limits.md, docs/security.md) and who. */
export interface Rejection {
  reason: string;
  /** The status sent, or 0 when the connection was closed without a response. */
  status: number;
  connectionId: number;
  remoteAddress: string;
  remotePort: number;
}

export interface TapeSink {
  /** A request record starts at `at`; `view` is a DataView over `tape`, one per batch. */
  request(id: number, tape: Buffer, view: DataView, at: number): void;
  data(id: number, chunk: Buffer): void;
  trailers(id: number, headers: [string, string][]): void;
  end(id: number): void;
  bodyError(id: number, code: string, message: string): void;
  writeReady(id: number): void;
  aborted(id: number): void;
  stopped(): void;
  tls(connectionId: number, info: TlsRecord): void;
  connectionClosed(connectionId: number): void;
  rejected(rejection: Rejection): void;
  refused(id: number, code: string, message: string): void;
}

/** What a TLS handshake negotiated, once per connection. */
export interface TlsRecord {
  protocol: string;
  cipherSuite: string;
  alpnProtocol: string | undefined;
  serverName: string | undefined;
  /** DER; empty when the client presented none. */
  clientCertificate: Buffer;
}

function readTls(tape: Buffer, at: number): { connectionId: number; info: TlsRecord } {
  const connectionId = tape.readDoubleLE(at);
  let p = at + 8;
  const str = (): string => {
    const length = tape.readUInt16LE(p);
    const value = tape.toString("latin1", p + 2, p + 2 + length);
    p += 2 + length;
    return value;
  };
  const protocol = str();
  const cipherSuite = str();
  const alpn = str();
  const serverName = str();
  const certLength = tape.readUInt32LE(p);
  // A copy: a view would keep the whole batch's tape alive for the connection's life.
  const clientCertificate = Buffer.from(tape.subarray(p + 4, p + 4 + certLength));
  return {
    connectionId,
    info: {
      protocol,
      cipherSuite,
      alpnProtocol: alpn === "" ? undefined : alpn,
      serverName: serverName === "" ? undefined : serverName,
      clientCertificate,
    },
  };
}

function method(tape: Buffer, at: number, length: number): string {
  // The common methods come from constants rather than new strings.
  const c = tape[at];
  if (length === 3 && c === 71 && tape[at + 1] === 69 && tape[at + 2] === 84) return "GET";
  if (length === 4 && c === 80 && tape[at + 1] === 79 && tape[at + 2] === 83 && tape[at + 3] === 84) return "POST";
  if (length === 4 && c === 72 && tape[at + 1] === 69 && tape[at + 2] === 65 && tape[at + 3] === 68) return "HEAD";
  return tape.toString("latin1", at, at + length);
}

export function readAddress(tape: Buffer, at: number): { address: string; port: number } {
  const family = tape[at];
  const port = tape.readUInt16LE(at + 17);
  // A unix socket peer has no IP address (docs/options.md, urls).
  if (family === 0) return { address: "", port: 0 };
  if (family === 4) {
    return { address: `${tape[at + 1]}.${tape[at + 2]}.${tape[at + 3]}.${tape[at + 4]}`, port };
  }
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(tape.readUInt16BE(at + 1 + i * 2).toString(16));
  return { address: compressIpv6(groups), port };
}

function compressIpv6(groups: string[]): string {
  // Replace the longest run of zero groups with "::" (RFC 5952).
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLength && j - i > 1) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(":");
  return `${groups.slice(0, bestStart).join(":")}::${groups.slice(bestStart + bestLength).join(":")}`;
}

export function readHeaders(tape: Buffer, at: number): { headers: [string, string][]; end: number } {
  const count = tape.readUInt16LE(at);
  let p = at + 2;
  const headers: [string, string][] = new Array(count);
  for (let i = 0; i < count; i++) {
    const nameLength = tape.readUInt16LE(p);
    const name = tape.toString("latin1", p + 2, p + 2 + nameLength);
    p += 2 + nameLength;
    const valueLength = tape.readUInt32LE(p);
    const value = tape.toString("latin1", p + 4, p + 4 + valueLength);
    p += 4 + valueLength;
    headers[i] = [name, value];
  }
  return { headers, end: p };
}

/** Targets up to this long are compared with the last one before decoding. */
const TARGET_REUSE_MAX = 64;
/** The last target decoded: a run of requests for one path shares the string. */
let lastTarget = "";

function target(tape: Buffer, at: number, length: number): string {
  // Decoding is a call into C++ that costs more than comparing a short target with
  // the last one; sharing the string also keeps its hash, which routing looks up.
  if (length === lastTarget.length && length <= TARGET_REUSE_MAX) {
    let i = 0;
    while (i < length && tape[at + i] === lastTarget.charCodeAt(i)) i++;
    if (i === length) return lastTarget;
  }
  const decoded = tape.toString("latin1", at, at + length);
  lastTarget = decoded;
  return decoded;
}

/*
 * A request record's fixed part, read in place: an exchange keeps the tape and the
 * record's offset, and decodes the rest (a RequestRecord) only when the app asks for
 * the request. An app that answers from the features alone never does.
 */

export function requestVersion(tape: Buffer, at: number): number {
  return tape[at] as number;
}

export function requestBodyEmpty(tape: Buffer, at: number): boolean {
  return ((tape[at + 1] as number) & FLAG_BODY_EMPTY) !== 0;
}

export function requestHttps(tape: Buffer, at: number): boolean {
  return ((tape[at + 1] as number) & FLAG_HTTPS) !== 0;
}

export function requestConnectionId(view: DataView, at: number): number {
  return view.getFloat64(at + 2, true);
}

/** The HTTP/2 stream id; 0 when the request is not HTTP/2 or the core did not say. */
export function requestStreamId(view: DataView, at: number): number {
  return view.getUint32(at + 18, true);
}

/** One request's head, as a view over the tape. */
export class RequestRecord {
  readonly tape: Buffer;
  readonly version: number;
  readonly https: boolean;
  readonly connectionId: number;
  readonly method: string;
  readonly target: string;
  /** Offsets of lazily decoded parts. */
  readonly addressesAt: number;
  readonly authorityAt: number;

  /** `view` is a DataView over `tape`, made once per batch: its reads inline, Buffer's do not. */
  constructor(tape: Buffer, view: DataView, at: number) {
    this.tape = tape;
    this.version = requestVersion(tape, at);
    this.https = requestHttps(tape, at);
    this.connectionId = requestConnectionId(view, at);
    this.addressesAt = at + 22;
    let p = at + 22 + 38;
    const methodLength = view.getUint16(p, true);
    this.method = method(tape, p + 2, methodLength);
    p += 2 + methodLength;
    const targetLength = view.getUint32(p, true);
    this.target = target(tape, p + 4, targetLength);
    this.authorityAt = p + 4 + targetLength;
  }

  get protocol(): string {
    return this.version === 20 ? "HTTP/2" : this.version === 10 ? "HTTP/1.0" : "HTTP/1.1";
  }

  get authority(): string {
    const length = this.tape.readUInt16LE(this.authorityAt);
    return this.tape.toString("latin1", this.authorityAt + 2, this.authorityAt + 2 + length);
  }

  headers(): [string, string][] {
    const length = this.tape.readUInt16LE(this.authorityAt);
    return readHeaders(this.tape, this.authorityAt + 2 + length).headers;
  }

  remote(): { address: string; port: number } {
    return readAddress(this.tape, this.addressesAt);
  }

  local(): { address: string; port: number } {
    return readAddress(this.tape, this.addressesAt + 19);
  }
}

/** A body error's or a refusal's code and message. */
function readError(tape: Buffer, at: number): { code: string; message: string } {
  const codeLength = tape.readUInt16LE(at);
  const code = tape.toString("latin1", at + 2, at + 2 + codeLength);
  const messageAt = at + 2 + codeLength;
  const messageLength = tape.readUInt16LE(messageAt);
  return { code, message: tape.toString("utf8", messageAt + 2, messageAt + 2 + messageLength) };
}

/** Dispatches every record of one batch to `sink`, in order. */
export function readTape(batch: Buffer[], sink: TapeSink): void {
  const tape = batch[0] as Buffer;
  const view = new DataView(tape.buffer, tape.byteOffset, tape.byteLength);
  const end = tape.length;
  let at = 0;
  while (at < end) {
    const kind = tape[at];
    const id = view.getUint32(at + 1, true);
    const length = view.getUint32(at + 5, true);
    const body = at + 9;
    switch (kind) {
      case Kind.Request:
        sink.request(id, tape, view, body);
        break;
      case Kind.Data:
        sink.data(id, batch[1 + view.getUint32(body, true)] as Buffer);
        break;
      case Kind.Trailers:
        sink.trailers(id, readHeaders(tape, body).headers);
        break;
      case Kind.End:
        sink.end(id);
        break;
      case Kind.BodyError: {
        const { code, message } = readError(tape, body);
        sink.bodyError(id, code, message);
        break;
      }
      case Kind.Refused: {
        const { code, message } = readError(tape, body);
        sink.refused(id, code, message);
        break;
      }
      case Kind.WriteReady:
        sink.writeReady(id);
        break;
      case Kind.Aborted:
        sink.aborted(id);
        break;
      case Kind.Stopped:
        sink.stopped();
        break;
      case Kind.Tls: {
        const { connectionId, info } = readTls(tape, body);
        sink.tls(connectionId, info);
        break;
      }
      case Kind.Rejected: {
        const status = tape.readUInt16LE(body);
        const reasonLength = tape.readUInt16LE(body + 2);
        const reason = tape.toString("latin1", body + 4, body + 4 + reasonLength);
        const at = body + 4 + reasonLength;
        const remote = readAddress(tape, at + 8);
        sink.rejected({
          reason,
          status,
          connectionId: tape.readDoubleLE(at),
          remoteAddress: remote.address,
          remotePort: remote.port,
        });
        break;
      }
      case Kind.ConnectionClosed:
        sink.connectionClosed(tape.readDoubleLE(body));
        break;
    }
    at = body + length;
  }
}
