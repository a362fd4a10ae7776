import { Duplex } from "node:stream";
import type { BodyChunk } from "../features/index.js";

/** Where an upgraded stream's writes go: the exchange's response path. */
export interface UpgradedSink {
  /** Resolves once the transport can take more (backpressure). */
  write(chunk: BodyChunk): Promise<void>;
  /** Ends the app's side: the server closes its side once the writes are sent. */
  complete(): Promise<void>;
  /** Drops the connection. */
  abort(): void;
}

/**
 * An upgraded connection as a node:stream Duplex, over a server's request-body reader
 * (what the client sends) and response path (what the app writes). Reads are pulled
 * as the Duplex asks for them, and writes wait on the server's backpressure, so neither
 * direction buffers more than the server's limits.
 */
export function upgradedStream(incoming: AsyncIterable<Uint8Array>, sink: UpgradedSink): Duplex {
  const reader = incoming[Symbol.asyncIterator]();
  let pulling = false;
  let ended = false;
  const duplex = new Duplex({
    read() {
      if (pulling) return;
      pulling = true;
      void pull();
    },
    write(chunk: Buffer, _encoding, callback) {
      sink.write(chunk).then(() => callback(), callback);
    },
    final(callback) {
      ended = true;
      sink.complete().then(() => callback(), callback);
    },
    destroy(error, callback) {
      if (!ended) sink.abort();
      callback(error);
    },
  });
  async function pull(): Promise<void> {
    try {
      for (;;) {
        const next = await reader.next();
        if (next.done) {
          duplex.push(null);
          return;
        }
        if (!duplex.push(next.value)) break;
      }
    } catch (error) {
      duplex.destroy(error as Error);
      return;
    }
    pulling = false;
  }
  return duplex;
}

/** True for HTTP/1.1 requests that ask to upgrade: `Connection: upgrade`, `Upgrade`, no body. */
export function isUpgradeRequest(
  version: string,
  header: (name: string) => string | undefined,
  hasBody: boolean,
): boolean {
  if (version !== "HTTP/1.1" || hasBody) return false;
  const connection = header("connection");
  if (connection === undefined || header("upgrade") === undefined) return false;
  return connection.split(",").some((token) => token.trim().toLowerCase() === "upgrade");
}
