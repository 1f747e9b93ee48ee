// What Linux holds of a TCP connection on 127.0.0.1 (/proc/net/tcp): bytes sent that the other
// end has not acknowledged, and bytes received that the process has not read. A test waits on
// them to know that the process at the other end has read what was written, without sleeping.
import { existsSync, readFileSync } from "node:fs";
import type { Socket } from "node:net";
import { waitFor } from "./wait.js";

const endpoint = (port: number) => `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;

/** Each socket's queues (sent and unacknowledged, received and unread) by "local remote". */
function tcpQueues(): Map<string, { unacknowledged: number; unread: number }> {
  const queues = new Map<string, { unacknowledged: number; unread: number }>();
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const [, local, remote, , txRx = ""] = line.trim().split(/\s+/);
    const [tx = NaN, rx = NaN] = txRx.split(":").map((hex) => parseInt(hex, 16));
    queues.set(`${local} ${remote}`, { unacknowledged: tx, unread: rx });
  }
  return queues;
}

/**
 * Writes `bytes` and returns once the process at the other end of `socket` (on 127.0.0.1) has
 * read them: handed to the kernel, acknowledged by the other end's, and out of its receive queue
 * (or the connection closed: a socket gone from the table holds nothing).
 */
export async function writeRead(socket: Socket, bytes: string | Buffer): Promise<void> {
  if (socket.remoteAddress !== "127.0.0.1" || socket.localAddress !== "127.0.0.1")
    throw new Error(`writeRead reads IPv4 loopback sockets only, not ${socket.remoteAddress}`);
  if (!existsSync("/proc/net/tcp")) throw new Error("writeRead needs Linux's /proc/net/tcp");
  const [mine, theirs] = [endpoint(socket.localPort ?? 0), endpoint(socket.remotePort ?? 0)];
  await new Promise<void>((resolve, reject) =>
    socket.write(bytes, (error) => (error ? reject(error) : resolve())),
  );
  await waitFor(
    "the other end to read what was written",
    () => {
      const queues = tcpQueues();
      return (
        (queues.get(`${mine} ${theirs}`)?.unacknowledged ?? 0) === 0 &&
        (queues.get(`${theirs} ${mine}`)?.unread ?? 0) === 0
      );
    },
    { timeoutMs: 5000, intervalMs: 1 },
  );
}
