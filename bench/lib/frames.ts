// Length-prefixed frames for bench/transports.ts: `length:u32be body`, and a body that may end
// in a MAC tag over the direction, the frame's number and the payload.
import { createHmac, timingSafeEqual } from "node:crypto";

export const MAX_FRAME = 1 << 20;
// Truncated to 128 bits as in RFC 4868: the tag counts against the bytes-per-like goal.
const TAG_BYTES = 16;

/** Splits a byte stream into frames of `length:u32be payload`; a frame may span chunks. */
export class FrameReader {
  private buffered: Buffer = Buffer.alloc(0);

  constructor(private readonly onFrame: (body: Buffer) => void) {}

  push(chunk: Buffer): void {
    const buffer = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    let at = 0;
    while (buffer.length - at >= 4) {
      const length = buffer.readUInt32BE(at);
      if (length > MAX_FRAME) throw new Error(`frame of ${length} bytes`);
      if (buffer.length - at - 4 < length) break;
      this.onFrame(buffer.subarray(at + 4, at + 4 + length));
      at += 4 + length;
    }
    this.buffered = buffer.subarray(at);
  }
}

/**
 * One direction of a link: frames numbered from 0, each sealed (or checked) with a tag over the
 * direction, its number and its payload, so that a frame cannot be forged, replayed or reordered.
 * The numbers are implicit: both ends count.
 */
export class FrameSealer {
  private seq = 0n;
  private readonly header = Buffer.alloc(9);

  constructor(
    private readonly key: Buffer | undefined,
    direction: number,
  ) {
    this.header[0] = direction;
  }

  private tag(payload: Buffer): Buffer {
    this.header.writeBigUInt64BE(this.seq++, 1);
    return createHmac("sha256", this.key as Buffer)
      .update(this.header)
      .update(payload)
      .digest()
      .subarray(0, TAG_BYTES);
  }

  /** `length:u32be payload [tag]`, as one buffer for one socket write. */
  seal(payload: Buffer): Buffer {
    const tagBytes = this.key ? TAG_BYTES : 0;
    const frame = Buffer.allocUnsafe(4 + payload.length + tagBytes);
    frame.writeUInt32BE(payload.length + tagBytes, 0);
    payload.copy(frame, 4);
    if (this.key) this.tag(payload).copy(frame, 4 + payload.length);
    return frame;
  }

  /** The payload of a received frame body, after its tag is checked. */
  open(body: Buffer): Buffer {
    if (!this.key) return body;
    const payload = body.subarray(0, body.length - TAG_BYTES);
    const given = body.subarray(body.length - TAG_BYTES);
    if (given.length !== TAG_BYTES || !timingSafeEqual(given, this.tag(payload)))
      throw new Error("frame rejected: bad tag");
    return payload;
  }
}
