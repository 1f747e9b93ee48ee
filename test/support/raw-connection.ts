// A client connection that writes raw bytes, for what an HTTP client library would not send.
import { connect, type Socket } from "node:net";

/** A raw connection: what it received, and how it ended. */
export function rawConnection(port: number): {
  socket: Socket;
  received: () => string;
  ended: Promise<{ hadError: boolean }>;
} {
  const socket = connect(port, "127.0.0.1");
  let text = "";
  socket.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
  const ended = new Promise<{ hadError: boolean }>((resolve) => {
    socket.on("error", () => {});
    socket.on("close", (hadError) => resolve({ hadError }));
  });
  return { socket, received: () => text, ended };
}
