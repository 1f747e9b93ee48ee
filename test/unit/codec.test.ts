import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  MAX_SEQ,
  isEntry,
  isNodeName,
  isOriginId,
  type Entry,
  type NodeName,
  type OriginId,
  type PostId,
  type UserId,
} from "../../src/crdt/index.js";
import { binaryCodec } from "../../src/replication/codec.js";
import { message } from "../support/peer-messages.js";
import { WireWriter } from "../../src/replication/wire.js";
import {
  MAX_PAGE_ENTRIES,
  MalformedMessageError,
  type DeltasRequest,
  type PeerMessage,
} from "../../src/replication/protocol.js";

const RUNS = 500;
const KINDS: PeerMessage["kind"][] = ["deltas", "sync", "deltas-reply", "sync-reply"];

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
      (decoded.entries !== undefined &&
        decoded.entries.length <= MAX_PAGE_ENTRIES &&
        decoded.entries.every(isEntry))) &&
    [
      ("vv" in decoded && decoded.vv) || ("diff" in decoded && decoded.diff) || new Map(),
      ("acks" in decoded && decoded.acks) || new Map(),
    ].every((d: ReadonlyMap<OriginId, number>) =>
      [...d].every(([o, n]) => isOriginId(o) && Number.isSafeInteger(n) && n >= 0 && n <= MAX_SEQ),
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
const push = (n: number): DeltasRequest => ({
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
    reject(Buffer.concat([valid, Buffer.of(0)]), "deltas", /acks given empty/);
    const acked = binaryCodec.encode({ ...push(3), acks: new Map([[pushEntry(1).origin, 2]]) });
    reject(Buffer.concat([acked, Buffer.of(0)]), "deltas", /bytes after the message/);
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
    // the origin's index (1, the sender's: 0 is its node name), after, and upTo − after.
    const windowed = (after: number, length: number) => {
      const w = new WireWriter();
      w.varint(1);
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
      });
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
