// The replicated unit (an entry: a like with its dot) and its guard for network input.
import { isOriginId, type OriginId, type PostId, type UserId } from "./ids.js";
import { isLikeField } from "./like.js";

/** A dot names one like accepted first-hand: the origin that accepted it and its seq there. */
export interface Dot {
  readonly origin: OriginId;
  readonly seq: number;
}

/** The replicated unit: a like with its dot, the origin's acceptance time and trace context. */
export interface Entry extends Dot {
  readonly post: PostId;
  readonly user: UserId;
  /** Origin wall clock at acceptance, ms since the epoch. */
  readonly ts: number;
  /** W3C traceparent of the request that created it, when that request was sampled. */
  readonly traceparent?: string;
}

const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** Bits of a seq: a store packs an origin's index and a seq into one 64-bit integer. */
export const SEQ_BITS = 40;
/** The largest seq a dot may carry. */
export const MAX_SEQ = 2 ** SEQ_BITS - 1;

export function isTraceparent(value: unknown): value is string {
  return typeof value === "string" && TRACEPARENT.test(value);
}

export function isSeq(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 1 && value <= MAX_SEQ;
}

/** Guard for entries that come from the network: anything else is rejected whole. */
export function isEntry(value: unknown): value is Entry {
  if (typeof value !== "object" || value === null) return false;
  const e = value as Record<string, unknown>;
  return (
    isOriginId(e.origin) &&
    isSeq(e.seq) &&
    isLikeField(e.post) &&
    isLikeField(e.user) &&
    typeof e.ts === "number" &&
    Number.isSafeInteger(e.ts) &&
    e.ts >= 0 &&
    (e.traceparent === undefined || isTraceparent(e.traceparent))
  );
}

export function dotKey(dot: Dot): string {
  return `${dot.origin}#${dot.seq}`;
}
