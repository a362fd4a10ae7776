import { lstat, unlink } from "node:fs/promises";
import { connect, type Server } from "node:net";

/**
 * Listens on a unix socket path, as the native core does (transport.rs): a socket file
 * left behind by a process that died is replaced; one a live process still accepts on,
 * or a path that is not a socket, fails with EADDRINUSE and is left alone. node removes
 * the file when the server closes.
 */
export async function listenUnix(server: Server, path: string): Promise<void> {
  const stats = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return undefined;
    throw error;
  });
  if (stats !== undefined) {
    if (!stats.isSocket()) {
      throw inUse("the path exists and is not a socket; remove it or pick another path");
    }
    if (await accepts(path)) throw inUse("another process is listening on this socket");
    await unlink(path);
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ path }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

function inUse(message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code: "EADDRINUSE" });
}

/** True when something accepts connections on the socket. */
function accepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
