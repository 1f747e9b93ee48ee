// An authenticated connection of a peer link: sealed frames out, opened frames in. Frames sent
// in one turn of the event loop go out in one socket write; a frame that fails its tag, breaks
// the framing or cannot be read closes the connection, with nothing of it applied.
import type { Socket } from "node:net";
import type { FrameReader, FrameSealer } from "./frames.js";
import { varintSize } from "../replication/wire.js";
import { FrameError, MAX_FRAME_BYTES } from "./frames.js";

export interface ConnectionEvents {
  /** One opened frame's payload, in the order sent. */
  payload(payload: Buffer): void;
  /** The socket can take more after having buffered past its high-water mark. */
  drained(): void;
  /** The connection is gone: `error` says why when it did not end cleanly. */
  closed(error: Error | undefined): void;
  /** Bytes on the wire, frames whole (length, payload, tag). */
  bytes(direction: "in" | "out", n: number): void;
}

export class Connection {
  private closing: Error | undefined;
  private isClosed = false;
  private corked = false;
  /** Told to stop reading: no frame is handed on, even one already read. */
  private isPaused = false;

  constructor(
    private readonly socket: Socket,
    private readonly sealer: FrameSealer,
    private readonly opener: FrameSealer,
    private readonly reader: FrameReader,
    private readonly events: ConnectionEvents,
  ) {
    reader.maxBytes = MAX_FRAME_BYTES;
    reader.sealed = true;
    socket.on("data", (chunk: Buffer) => this.received(chunk));
    socket.on("drain", () => events.drained());
    socket.on("error", (error) => this.close(error));
    socket.on("close", () => this.finish());
  }

  /** Reads the frames that arrived with the end of the handshake (already in the reader). */
  start(): void {
    this.received(undefined);
  }

  get open(): boolean {
    return !this.isClosed && this.closing === undefined;
  }

  /** Bytes written and not yet taken by the kernel. */
  get buffered(): number {
    return this.socket.writableLength;
  }

  /** Seals and sends a payload; frames of one turn share one write. */
  send(payload: Buffer): void {
    if (!this.open) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    const frame = this.sealer.seal(payload);
    this.events.bytes("out", frame.length);
    this.socket.write(frame);
  }

  /**
   * Stops reading (a reader that does not keep up) or starts again. A pause holds the frames of
   * a socket read not yet handed on too: one read may hold a thousand small requests.
   */
  pause(): void {
    this.isPaused = true;
    this.socket.pause();
  }

  resume(): void {
    if (!this.open || !this.isPaused) return;
    this.isPaused = false;
    // The frames read before the pause go first.
    this.received(undefined);
    if (this.open && !this.isPaused) this.socket.resume();
  }

  get paused(): boolean {
    return this.isPaused;
  }

  close(error?: Error): void {
    if (this.isClosed || this.closing) return;
    this.closing = error ?? new Error("closed");
    if (error) this.socket.destroy();
    else this.socket.end();
    // A socket that never says "close" (ended by us, then silent) is destroyed after a while.
    setTimeout(() => this.socket.destroy(), 1000).unref();
    if (error) this.finish();
  }

  private received(chunk: Buffer | undefined): void {
    if (!this.open) return;
    try {
      if (chunk) this.reader.push(chunk);
      if (this.isPaused) return;
      for (let body = this.reader.next(); body; body = this.reader.next()) {
        this.events.bytes("in", varintSize(body.length) + body.length);
        this.events.payload(this.opener.open(body));
        if (!this.open || this.isPaused) return;
      }
    } catch (error) {
      this.close(error instanceof Error ? error : new FrameError(String(error)));
    }
  }

  private finish(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const error = this.closing;
    this.events.closed(error?.message === "closed" ? undefined : error);
  }
}
