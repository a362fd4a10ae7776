import type http from "node:http";
import type http2 from "node:http2";
import type { Socket } from "node:net";

/** What an HTTP/2 client sends first (RFC 9113, section 3.4). */
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * Serves h2c (HTTP/2 with prior knowledge) and HTTP/1.1 on one cleartext port, as the
 * native core does: the first bytes of each connection decide. node has no such
 * server, so this takes over the http.Server's 'connection' event and hands each
 * socket to node:http's own listener or to an (unlistening) node:http2 server.
 *
 * It leans on one node:http detail: its connection listener also feeds the parser
 * from the socket's 'data' event, so the bytes read while deciding are emitted there
 * again. The conformance suite and test/http2.test.ts cover both paths.
 */
export function detectPreface(server: http.Server, h2c: http2.Http2Server, idleTimeout: number): PrefaceDetection {
  const httpListeners = server.listeners("connection") as ((socket: Socket) => void)[];
  const undecided = new Set<Socket>();
  server.removeAllListeners("connection");
  server.on("connection", (socket: Socket) => {
    undecided.add(socket);
    socket.once("close", () => undecided.delete(socket));
    let seen: Buffer = Buffer.alloc(0);
    // A connection that sends nothing is idle: it gets the keep-alive timeout, as between requests.
    socket.setTimeout(idleTimeout, () => socket.destroy());
    const onData = (chunk: Buffer) => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, PREFACE.length);
      const http2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (http2 && seen.length < PREFACE.length) return;
      undecided.delete(socket);
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.setTimeout(0);
      socket.pause();
      if (http2) {
        // node:http2 takes what is buffered in the (paused) socket when it sets the session up.
        socket.unshift(seen);
        h2c.emit("connection", socket);
      } else {
        for (const listener of httpListeners) listener.call(server, socket);
        socket.emit("data", seen);
        socket.resume();
      }
    };
    const onEnd = () => socket.destroy();
    socket.on("data", onData);
    socket.on("end", onEnd);
  });
  return {
    closeUndecided() {
      for (const socket of undecided) socket.destroy();
    },
  };
}

export interface PrefaceDetection {
  /** Closes connections that have not sent their first bytes yet: they are idle (graceful stop). */
  closeUndecided(): void;
}
