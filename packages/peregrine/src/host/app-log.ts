import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";

/** Longer lines are cut into pieces of this many characters, so an app printing without newlines cannot grow the host's memory. */
const MAX_LINE = 16 * 1024;

/**
 * Calls `onLine` for each line of an app's stdout or stderr, without the line ending.
 * A last line without a newline is emitted when the stream ends.
 */
export function forEachLine(stream: Readable, onLine: (line: string) => void): void {
  const decoder = new StringDecoder("utf8");
  let pending = "";
  const emit = (text: string) => {
    pending += text;
    let newline = pending.indexOf("\n");
    while (newline !== -1) {
      onLine(pending.slice(0, newline).replace(/\r$/, ""));
      pending = pending.slice(newline + 1);
      newline = pending.indexOf("\n");
    }
    while (pending.length >= MAX_LINE) {
      onLine(pending.slice(0, MAX_LINE));
      pending = pending.slice(MAX_LINE);
    }
  };
  stream.on("data", (chunk: Buffer) => emit(decoder.write(chunk)));
  stream.on("end", () => {
    emit(decoder.end());
    if (pending !== "") onLine(pending);
    pending = "";
  });
}
