// Request heads as the binding writes them on the tape (crates/peregrine-node/src/tape.rs),
// for tests that decode them without a native server.

export interface HeadOptions {
  method?: string;
  /** Default true: no request body. */
  bodyEmpty?: boolean;
  connectionId?: number;
}

/** One request head: version, flags, ids, two zeroed addresses (unix socket peers), method, target, no authority, no header fields. */
export function requestHead(
  target: string,
  { method = "GET", bodyEmpty = true, connectionId = 1 }: HeadOptions = {},
): Buffer {
  const methodBytes = Buffer.from(method, "latin1");
  const targetBytes = Buffer.from(target, "latin1");
  const head = Buffer.alloc(22 + 38 + 2 + methodBytes.length + 4 + targetBytes.length + 2 + 2);
  let at = 0;
  head[at++] = 11; // HTTP/1.1
  head[at++] = bodyEmpty ? 1 : 0;
  at = head.writeDoubleLE(connectionId, at);
  at = head.writeDoubleLE(bodyEmpty ? -1 : 10, at); // content length
  at = head.writeUInt32LE(0, at); // no stream id
  at += 38;
  at = head.writeUInt16LE(methodBytes.length, at);
  at += methodBytes.copy(head, at);
  at = head.writeUInt32LE(targetBytes.length, at);
  at += targetBytes.copy(head, at);
  at = head.writeUInt16LE(0, at); // authority
  head.writeUInt16LE(0, at); // header count
  return head;
}

/** The DataView the tape reader hands a sink along with the tape. */
export function viewOf(tape: Buffer): DataView {
  return new DataView(tape.buffer, tape.byteOffset, tape.byteLength);
}
