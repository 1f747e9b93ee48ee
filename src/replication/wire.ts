// Bytes of the binary peer format: unsigned varints, length-prefixed strings and traceparents.
// The reader trusts nothing: every read is bounds-checked and every value checked against what
// the domain allows, and any problem throws MalformedMessageError.
import { MAX_FIELD_BYTES, fieldProblem, isTraceparent } from "../crdt/index.js";
import { MalformedMessageError } from "./protocol.js";

const TWO_POW_32 = 2 ** 32;
// 8 groups of 7 bits hold every safe integer (53 bits); a 9th byte never is needed.
const MAX_VARINT_BYTES = 8;
// A traceparent `00-<16 bytes>-<8 bytes>-<1 byte>` travels as its 25 bytes.
export const TRACEPARENT_BYTES = 25;
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Bytes LEB128 takes for `value` (a safe integer, not negative). */
export function varintSize(value: number): number {
  let size = 1;
  for (let n = value; n >= 128; n = Math.floor(n / 128)) size++;
  return size;
}

/**
 * Writes `value` (a safe integer, not negative) at `pos` as LEB128: 7 bits a byte, low bits
 * first, high bit set on all but the last byte. The caller made room; returns the next position.
 */
export function putVarint(buf: Buffer, pos: number, value: number): number {
  let n = value;
  while (n >= TWO_POW_32) {
    buf[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  while (n > 0x7f) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

/** Appends to a growing buffer; throws RangeError for a value it cannot represent. */
export class WireWriter {
  private buf = Buffer.allocUnsafe(1024);
  private pos = 0;

  byte(value: number): void {
    this.room(1);
    this.buf[this.pos++] = value;
  }

  varint(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`not a varint: ${value}`);
    this.room(MAX_VARINT_BYTES);
    this.pos = putVarint(this.buf, this.pos, value);
  }

  /** Length in bytes, then UTF-8; ASCII (ids, most posts and users) is copied without a call out. */
  string(value: string): void {
    const n = value.length;
    let ascii = n < 0x80;
    for (let i = 0; ascii && i < n; i++) ascii = value.charCodeAt(i) < 0x80;
    if (ascii) {
      this.room(n + 1);
      this.buf[this.pos++] = n;
      for (let i = 0; i < n; i++) this.buf[this.pos++] = value.charCodeAt(i);
      return;
    }
    const length = Buffer.byteLength(value, "utf8");
    this.varint(length);
    this.room(length);
    this.pos += this.buf.write(value, this.pos, "utf8");
  }

  traceparent(value: string): void {
    if (!isTraceparent(value)) throw new RangeError("not a traceparent");
    this.room(TRACEPARENT_BYTES);
    this.pos += this.buf.write(value.slice(3, 35), this.pos, "hex");
    this.pos += this.buf.write(value.slice(36, 52), this.pos, "hex");
    this.pos += this.buf.write(value.slice(53, 55), this.pos, "hex");
  }

  /** Bytes as they are (their length is the reader's to know). */
  raw(value: Uint8Array): void {
    this.room(value.length);
    this.buf.set(value, this.pos);
    this.pos += value.length;
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}

/**
 * Shorter strings are copies in V8; from this length on, a substring is a view that keeps the
 * string it was cut from alive.
 */
const SLICED_STRING_MIN = 13;

/** Reads what WireWriter wrote, from untrusted bytes. */
export class WireReader {
  private pos = 0;
  /** The whole message as Latin-1, made at the first short field that needs it. */
  private text: string | undefined;

  constructor(private readonly buf: Buffer) {}

  byte(): number {
    if (this.pos >= this.buf.length) throw new MalformedMessageError("truncated");
    return this.buf[this.pos++] as number;
  }

  /** A safe integer in canonical form (no trailing zero groups). */
  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      const b = this.byte();
      value += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (b === 0 && i > 0) throw new MalformedMessageError("varint not in its shortest form");
        if (!Number.isSafeInteger(value)) throw new MalformedMessageError("varint too large");
        return value;
      }
      scale *= 128;
    }
    throw new MalformedMessageError("varint too long");
  }

  /** A count of items that each take at least `minBytes`: it cannot exceed what is left. */
  count(minBytes: number): number {
    const n = this.varint();
    if (n * minBytes > this.remaining()) throw new MalformedMessageError("count past the end");
    return n;
  }

  /** An ASCII id (node name, origin id): checked by the caller's guard, which allows only ASCII. */
  id(maxBytes: number): string {
    const length = this.varint();
    if (length > maxBytes) throw new MalformedMessageError("id too long");
    const start = this.pos;
    return this.buf.toString("latin1", start, this.take(length));
  }

  /** A post or user: 1..256 bytes of valid UTF-8 without control characters. */
  likeField(): string {
    const length = this.varint();
    if (length < 1 || length > MAX_FIELD_BYTES)
      throw new MalformedMessageError(`a field must be 1..${MAX_FIELD_BYTES} bytes`);
    const start = this.pos;
    const end = this.take(length);
    let printableAscii = true;
    for (let i = start; printableAscii && i < end; i++) {
      const b = this.buf[i] as number;
      printableAscii = b >= 0x20 && b < 0x7f;
    }
    // Printable ASCII passes every rule of a like field; anything else takes the full check.
    if (printableAscii) return this.ascii(start, end);
    let value: string;
    try {
      value = utf8.decode(this.buf.subarray(start, end));
    } catch {
      throw new MalformedMessageError("a field is not valid UTF-8");
    }
    const problem = fieldProblem(value);
    if (problem !== null) throw new MalformedMessageError(`a field ${problem}`);
    return value;
  }

  traceparent(): string {
    const start = this.pos;
    this.take(TRACEPARENT_BYTES);
    let hex = "00-";
    for (let i = 0; i < TRACEPARENT_BYTES; i++) {
      if (i === 16 || i === 24) hex += "-";
      hex += HEX[this.buf[start + i] as number] as string;
    }
    return hex;
  }

  /**
   * Bytes known to be ASCII as a string. A short one (most posts and users) is cut from one
   * string of the whole message: a string per field made from the buffer cost about 300 ns,
   * a cut about 50 (Node 24). A longer one is made on its own, so that a field kept for long
   * (a post in the store's cache) does not keep the whole message in memory.
   */
  private ascii(start: number, end: number): string {
    if (end - start >= SLICED_STRING_MIN) return this.buf.toString("latin1", start, end);
    this.text ??= this.buf.toString("latin1");
    return this.text.slice(start, end);
  }

  /** `n` bytes as they are: a view of the message's buffer, not a copy. */
  raw(n: number): Buffer {
    const start = this.pos;
    return this.buf.subarray(start, this.take(n));
  }

  remaining(): number {
    return this.buf.length - this.pos;
  }

  end(): void {
    if (this.pos !== this.buf.length) throw new MalformedMessageError("bytes after the message");
  }

  /** Skips `n` bytes that must be there; returns the position after them. */
  private take(n: number): number {
    if (n > this.remaining()) throw new MalformedMessageError("truncated");
    this.pos += n;
    return this.pos;
  }
}
