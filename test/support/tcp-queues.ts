// What Linux holds of a TCP connection on 127.0.0.1 (/proc/net/tcp): bytes sent that the other
// end has not acknowledged, and bytes received that the process has not read. A test waits on
// them to know that the process at the other end has read what was written, without sleeping.
import { readFileSync } from "node:fs";
import type { Socket } from "node:net";
import { waitFor } from "./wait.js";

interface TcpQueues {
  readonly unacknowledged: number;
  readonly unread: number;
}

const endpoint = (port: number) => `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;

/** The queues of the socket from `localPort` to `remotePort` on 127.0.0.1, if there is one. */
function tcpQueues(localPort: number, remotePort: number): TcpQueues | undefined {
  const [local, remote] = [endpoint(localPort), endpoint(remotePort)];
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] !== local || fields[2] !== remote) continue;
    const [tx = NaN, rx = NaN] = (fields[4] ?? "").split(":").map((hex) => parseInt(hex, 16));
    return { unacknowledged: tx, unread: rx };
  }
  return undefined;
}

/**
 * Writes `bytes` and returns once the process at the other end of `socket` (on 127.0.0.1) has
 * read them: handed to the kernel, acknowledged by the other end's, and out of its receive queue
 * (or the connection closed: a socket gone from the table holds nothing).
 */
export async function writeRead(socket: Socket, bytes: string | Buffer): Promise<void> {
  await new Promise<void>((resolve, reject) =>
    socket.write(bytes, (error) => (error ? reject(error) : resolve())),
  );
  const [mine, theirs] = [socket.localPort ?? 0, socket.remotePort ?? 0];
  await waitFor(
    "the other end to read what was written",
    () =>
      (tcpQueues(mine, theirs)?.unacknowledged ?? 0) === 0 &&
      (tcpQueues(theirs, mine)?.unread ?? 0) === 0,
    { timeoutMs: 5000, intervalMs: 1 },
  );
}
