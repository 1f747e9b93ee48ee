import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  Direction,
  FrameError,
  FrameReader,
  FrameSealer,
  MAX_FRAME_BYTES,
  TAG_BYTES,
} from "../../src/link/frames.js";

const key = randomBytes(32);
const sealedReader = () => Object.assign(new FrameReader(MAX_FRAME_BYTES), { sealed: true });

describe("sealed frames", () => {
  it("reads back every payload sealed, however the stream is cut into chunks", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.integer({ min: 0, max: 200 }),
            fc.constantFrom(127 - TAG_BYTES, 128 - TAG_BYTES, 0x4000 - TAG_BYTES, 70_000),
          ),
          { minLength: 1, maxLength: 6 },
        ),
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 20 }),
        (sizes, cuts) => {
          const sealer = new FrameSealer(key, Direction.toServer);
          const payloads = sizes.map((n) => randomBytes(n));
          const stream = Buffer.concat(payloads.map((p) => sealer.seal(p)));
          const reader = sealedReader();
          const opener = new FrameSealer(key, Direction.toServer);
          const read: Buffer[] = [];
          for (let at = 0, i = 0; at < stream.length; i++) {
            const next = Math.min(stream.length, at + (cuts[i % cuts.length] as number));
            reader.push(stream.subarray(at, next));
            at = next;
            for (let body = reader.next(); body; body = reader.next()) read.push(opener.open(body));
          }
          // As hex: toEqual walks a Buffer byte by byte, seconds for the 70,000-byte payloads.
          expect(read.map((b) => b.toString("hex"))).toEqual(
            payloads.map((p) => p.toString("hex")),
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it("writes a small frame's length in one byte", () => {
    const sealer = new FrameSealer(key, Direction.toClient);
    expect(sealer.seal(Buffer.alloc(10)).length).toBe(1 + 10 + TAG_BYTES);
    expect(sealer.seal(Buffer.alloc(200)).length).toBe(2 + 200 + TAG_BYTES);
  });

  it("refuses a length too large, too long or not in its shortest form, before its body", () => {
    const refuses = (head: number[], reason: RegExp) => {
      const reader = sealedReader();
      reader.push(Buffer.from(head));
      expect(() => reader.next()).toThrow(FrameError);
      expect(() => {
        const again = sealedReader();
        again.push(Buffer.from(head));
        again.next();
      }).toThrow(reason);
    };
    // 2^20 + 1: one byte past the limit, three bytes of length, no body sent.
    refuses([0x81, 0x80, 0x40], /a frame of 1048577 bytes/);
    refuses([0x80, 0x80, 0x80, 0x01], /more than 3 bytes/);
    refuses([0x85, 0x00], /shortest form/);
    // A length cut short waits for its next byte.
    const reader = sealedReader();
    reader.push(Buffer.from([0x80]));
    expect(reader.next()).toBeUndefined();
  });
});
