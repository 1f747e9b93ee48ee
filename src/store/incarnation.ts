// Incarnation ids: a data directory's life, part of its origin id.
import { randomBytes } from "node:crypto";

/** A fresh incarnation id: 80 random bits in base 36 (at most 16 characters). */
export function randomIncarnation(): string {
  return BigInt(`0x${randomBytes(10).toString("hex")}`).toString(36);
}
