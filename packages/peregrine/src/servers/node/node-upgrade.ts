import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { isUpgradeRequest } from "../upgraded-stream.js";

/** An upgrade request node:http handed to the 'upgrade' listener: its socket and the bytes after the head. */
export interface NodeUpgradeContext {
  socket: Socket;
  head: Buffer;
}

/** What the NodeServer keeps for maxConcurrentUpgradedConnections. */
export interface UpgradeCounter {
  /** Counts one more upgraded connection, unless the limit is reached. */
  tryUpgrade(socket: Socket): boolean;
}

export function isNodeUpgradeRequest(req: IncomingMessage): boolean {
  const hasBody = req.headers["transfer-encoding"] !== undefined || (req.headers["content-length"] ?? "0") !== "0";
  return isUpgradeRequest(
    `HTTP/${req.httpVersion}`,
    (name) => {
      const value = req.headers[name];
      return Array.isArray(value) ? value.join(", ") : value;
    },
    hasBody,
  );
}

/** The 101 head, written to the socket itself: node:http has let go of it. */
export function switchingProtocolsHead(fields: [string, string][], upgrade: string): string {
  let head = "HTTP/1.1 101 Switching Protocols\r\n";
  let hasUpgrade = false;
  for (const [name, value] of fields) {
    if (name === "connection" || name === "content-length" || name === "transfer-encoding") continue;
    if (name === "upgrade") hasUpgrade = true;
    head += `${name}: ${value}\r\n`;
  }
  if (!hasUpgrade) head += `upgrade: ${upgrade}\r\n`;
  return `${head}connection: upgrade\r\n\r\n`;
}
