import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  MAX_SEQ,
  isEntry,
  isLikeField,
  isNodeName,
  isOriginId,
  type Entry,
  type NodeName,
  type OriginId,
  type PostId,
  type UserId,
} from "../../src/crdt/index.js";
import { binaryCodec } from "../../src/replication/codec.js";
import { WireWriter } from "../../src/replication/wire.js";
import {
  MAX_PAGE_ENTRIES,
  MalformedMessageError,
  type PeerMessage,
} from "../../src/replication/protocol.js";

const RUNS = 500;
const KINDS: PeerMessage["kind"][] = ["deltas", "sync", "deltas-reply", "sync-reply"];

const nodeName = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/) as fc.Arbitrary<NodeName>;
const origin = fc.oneof(
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
const entry: fc.Arbitrary<Entry> = fc
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
const message: fc.Arbitrary<PeerMessage> = fc.oneof(
  fc.record({ kind: fc.constant("deltas" as const), ...sender, entries }),
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
    kind: fc.constant("sync-reply" as const),
    ...sender,
    entries,
    diff: digest,
    more: fc.boolean(),
  }),
);

/** Decodes untrusted bytes: a valid message of that kind, or MalformedMessageError, nothing else. */
function decodesSafely(bytes: Buffer, kind: PeerMessage["kind"]): boolean {
  let decoded: PeerMessage;
  try {
    decoded = binaryCodec.decode(bytes, kind);
  } catch (error) {
    return error instanceof MalformedMessageError;
  }
  return (
    decoded.kind === kind &&
    isNodeName(decoded.node) &&
    isOriginId(decoded.origin) &&
    (!("entries" in decoded) ||
      (decoded.entries.length <= MAX_PAGE_ENTRIES && decoded.entries.every(isEntry))) &&
    [("vv" in decoded && decoded.vv) || ("diff" in decoded && decoded.diff) || new Map()].every(
      (d: ReadonlyMap<OriginId, number>) =>
        [...d].every(
          ([o, n]) => isOriginId(o) && Number.isSafeInteger(n) && n >= 0 && n <= MAX_SEQ,
        ),
    )
  );
}

const pushEntry = (seq: number): Entry => ({
  origin: "node1~k3j2h4g5f6" as OriginId,
  seq,
  post: "load-123" as PostId,
  user: `b-0-${seq}` as UserId,
  ts: 1_700_000_000_000 + seq,
});
const push = (n: number): PeerMessage => ({
  kind: "deltas",
  node: "node1" as NodeName,
  origin: "node1~k3j2h4g5f6" as OriginId,
  entries: Array.from({ length: n }, (_, i) => pushEntry(i + 1)),
});

describe("binary peer codec", () => {
  it("decodes every message it encodes to an equal message", () => {
    fc.assert(
      fc.property(message, (m) => {
        expect(binaryCodec.decode(binaryCodec.encode(m), m.kind)).toEqual(m);
      }),
      { numRuns: RUNS },
    );
  });

  it("turns random bytes into MalformedMessageError, never a crash", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(...KINDS), (bytes, kind) =>
        decodesSafely(Buffer.from(bytes), kind),
      ),
      { numRuns: 2000 },
    );
  });

  it("turns damaged messages into MalformedMessageError or a message that passes every guard", () => {
    const damage = fc.array(
      fc.tuple(fc.constantFrom("flip", "set", "insert", "delete"), fc.nat(), fc.nat(255)),
      { minLength: 1, maxLength: 4 },
    );
    fc.assert(
      fc.property(message, damage, fc.nat(), (m, edits, cut) => {
        const bytes = [...binaryCodec.encode(m)];
        for (const [edit, at, value] of edits) {
          const i = at % Math.max(1, bytes.length);
          if (edit === "flip") bytes[i] = (bytes[i] ?? 0) ^ (1 << (value % 8));
          else if (edit === "set") bytes[i] = value;
          else if (edit === "insert") bytes.splice(i, 0, value);
          else bytes.splice(i, 1);
        }
        return (
          decodesSafely(Buffer.from(bytes), m.kind) &&
          decodesSafely(Buffer.from(bytes.slice(0, cut % (bytes.length + 1))), m.kind)
        );
      }),
      { numRuns: 2000 },
    );
  });

  it("says what is wrong with a message it refuses", () => {
    const reject = (bytes: Buffer, kind: PeerMessage["kind"], reason: RegExp) =>
      expect(() => binaryCodec.decode(bytes, kind)).toThrow(reason);
    const valid = binaryCodec.encode(push(3));
    reject(Buffer.from(JSON.stringify({ kind: "deltas" })), "deltas", /not a message of peer/);
    reject(valid, "sync", /expected kind sync/);
    reject(Buffer.concat([valid, Buffer.of(0)]), "deltas", /bytes after the message/);
    reject(valid.subarray(0, valid.length - 1), "deltas", /truncated/);
    reject(binaryCodec.encode(push(MAX_PAGE_ENTRIES + 1)), "deltas", /more than 5000 entries/);
    const syncAt = (seq: number) =>
      binaryCodec.encode({
        kind: "sync",
        node: "node1" as NodeName,
        origin: "node1~k3j2h4g5f6" as OriginId,
        vv: new Map([["node2~a1" as OriginId, seq]]),
      });
    expect(binaryCodec.decode(syncAt(MAX_SEQ), "sync")).toMatchObject({ kind: "sync" });
    reject(syncAt(MAX_SEQ + 1), "sync", /bad seq in a digest/);
    // A window is one origin's seqs after..upTo, after < upTo ≤ MAX_SEQ: after the vector,
    // the origin's index (0, the sender's), after, and upTo − after.
    const windowed = (after: number, length: number) => {
      const w = new WireWriter();
      w.varint(0);
      w.varint(after);
      w.varint(length);
      return Buffer.concat([syncAt(1), w.finish()]);
    };
    expect(binaryCodec.decode(windowed(3, 6), "sync")).toMatchObject({
      window: { origin: "node1~k3j2h4g5f6", after: 3, upTo: 9 },
    });
    reject(windowed(3, 0), "sync", /bad window/);
    reject(windowed(MAX_SEQ, 1), "sync", /bad window/);
    const withField = (user: string) =>
      binaryCodec.encode({
        ...push(0),
        entries: [{ ...pushEntry(1), user: user as UserId }],
      } as PeerMessage);
    reject(withField("a\u0000b"), "deltas", /control characters/);
    reject(withField("a\u0085b"), "deltas", /control characters/);
    const invalidUtf8 = withField("aé");
    invalidUtf8[invalidUtf8.length - 1] = 0xff;
    reject(invalidUtf8, "deltas", /not valid UTF-8/);
  });

  it("writes a contiguous run of one origin compactly", () => {
    // The origin once; then per entry flags, a 1-byte ts step and two short fields.
    const one = binaryCodec.encode(push(1)).length;
    const many = binaryCodec.encode(push(101)).length;
    expect((many - one) / 100).toBeLessThanOrEqual(1 + 1 + 9 + 11);
  });
});
