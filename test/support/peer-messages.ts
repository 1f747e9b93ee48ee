// Random peer messages for the codec's property tests, as varied as the format allows.
import fc from "fast-check";
import {
  MAX_SEQ,
  isLikeField,
  type Entry,
  type NodeName,
  type OriginId,
  type PostId,
  type UserId,
} from "../../src/crdt/index.js";
import type { PeerMessage } from "../../src/replication/protocol.js";

export const nodeName = fc.stringMatching(
  /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/,
) as fc.Arbitrary<NodeName>;
export const origin = fc.oneof(
  fc.constantFrom("a~1", "node1~k3j2h4g5f6", "node-2~zz"),
  fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}~[a-z0-9]{1,32}$/),
) as fc.Arbitrary<OriginId>;
const field = fc
  .oneof(
    fc.constantFrom("load-123", "b-0-123456", "é", "x".repeat(256), "é".repeat(128), "👍"),
    fc.string({ minLength: 1, maxLength: 20 }),
    fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }),
    fc.string({ unit: "binary", minLength: 1, maxLength: 80 }),
  )
  .filter(isLikeField);
const seq = fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: MAX_SEQ }));
const ts = fc.oneof(
  fc.integer({ min: 1_700_000_000_000, max: 1_700_000_100_000 }),
  fc.maxSafeNat(),
);
const traceparent = fc
  .tuple(
    fc.uint8Array({ minLength: 16, maxLength: 16 }),
    fc.uint8Array({ minLength: 8, maxLength: 8 }),
    fc.integer({ min: 0, max: 255 }),
  )
  .map(
    ([trace, span, flags]) =>
      `00-${Buffer.from(trace).toString("hex")}-${Buffer.from(span).toString("hex")}-${flags.toString(16).padStart(2, "0")}`,
  );
export const entry: fc.Arbitrary<Entry> = fc
  .record(
    { origin, seq, post: field, user: field, ts, traceparent },
    { requiredKeys: ["origin", "seq", "post", "user", "ts"] },
  )
  .map((e) => e as Entry);
/** Runs of one origin with contiguous seqs and close timestamps, as the store hands them out. */
const run: fc.Arbitrary<Entry[]> = fc
  .tuple(
    origin,
    fc.integer({ min: 1, max: MAX_SEQ - 30 }),
    fc.integer({ min: 0, max: 2 ** 52 }),
    fc.array(fc.tuple(field, field, fc.nat(20), fc.boolean(), traceparent)),
  )
  .map(([o, first, start, likes]) =>
    likes.map(([post, user, dt, traced, tp], i) => ({
      origin: o,
      seq: first + i,
      post: post as PostId,
      user: user as UserId,
      ts: start + i * dt,
      ...(traced ? { traceparent: tp } : {}),
    })),
  );
const entries = fc.oneof(
  fc.array(entry, { maxLength: 20 }),
  fc.array(run, { maxLength: 4 }).map((runs) => runs.flat()),
);
const digest = fc
  .array(
    fc.tuple(
      origin,
      fc.oneof(fc.nat(), fc.constant(MAX_SEQ), fc.integer({ min: 0, max: MAX_SEQ })),
    ),
    { maxLength: 8 },
  )
  .map((pairs) => new Map(pairs));
const sender = { node: nodeName, origin };
// Acks and rides are present only when not empty (the codec writes none otherwise).
const someDigest = digest.filter((d) => d.size > 0);
const someEntries = entries.filter((e) => e.length > 0);
export const message: fc.Arbitrary<PeerMessage> = fc.oneof(
  fc.record({ kind: fc.constant("deltas" as const), ...sender, entries }),
  fc.record({ kind: fc.constant("deltas" as const), ...sender, entries, acks: someDigest }),
  fc.record({ kind: fc.constant("sync" as const), ...sender, vv: digest }),
  fc.record({
    kind: fc.constant("sync" as const),
    ...sender,
    vv: digest,
    window: fc
      .tuple(origin, fc.integer({ min: 0, max: MAX_SEQ - 1 }), fc.integer({ min: 1, max: MAX_SEQ }))
      .map(([o, after, n]) => ({ origin: o, after, upTo: Math.min(MAX_SEQ, after + n) })),
  }),
  fc.record({ kind: fc.constant("deltas-reply" as const), ...sender, vv: digest }),
  fc.record({
    kind: fc.constant("deltas-reply" as const),
    ...sender,
    vv: digest,
    entries: someEntries,
  }),
  fc.record({
    kind: fc.constant("sync-reply" as const),
    ...sender,
    entries,
    diff: digest,
    more: fc.boolean(),
  }),
);
