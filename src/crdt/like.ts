// A like, the pair (post, user), and the rules its fields follow everywhere they enter.
import type { PostId, UserId } from "./ids.js";

/** A like is the pair (post, user); liking twice is one like. */
export interface Like {
  readonly post: PostId;
  readonly user: UserId;
}

export const MAX_FIELD_BYTES = 256;
// C0, DEL and C1 control characters (Unicode category Cc).
const CONTROL = /\p{Cc}/u;

/** Why a post or user string is not acceptable, or null when it is. */
export function fieldProblem(value: unknown): string | null {
  if (typeof value !== "string") return "must be a string";
  if (value.length === 0) return "must not be empty";
  // A lone surrogate would be stored as U+FFFD: the like read back would differ from the one sent.
  if (!value.isWellFormed()) return "must be well-formed UTF-16 (no lone surrogates)";
  if (Buffer.byteLength(value, "utf8") > MAX_FIELD_BYTES)
    return `must be at most ${MAX_FIELD_BYTES} bytes of UTF-8`;
  if (CONTROL.test(value)) return "must not contain control characters";
  return null;
}

export function isLikeField(value: unknown): value is string {
  return fieldProblem(value) === null;
}

/** One key per like, for sets and maps: NUL cannot occur in a valid field. */
export function likeKey(post: string, user: string): string {
  return `${post}\u0000${user}`;
}

/** The order in which users of a post are listed: UTF-8 byte order, which SQLite uses too. */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}
