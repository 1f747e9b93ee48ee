import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { NodeName, OriginId, PostId, UserId } from "../../src/crdt/index.js";
import { binaryCodec } from "../../src/replication/codec.js";
import {
  MAX_LINK_STRINGS,
  MAX_TS_STEP,
  ReceivedStrings,
  SentStrings,
  StringTableError,
} from "../../src/replication/link-strings.js";
import { MalformedMessageError, type PeerMessage } from "../../src/replication/protocol.js";
import { message } from "../support/peer-messages.js";

const ack = (origins: readonly string[], node = "node2"): PeerMessage => ({
  kind: "deltas-reply",
  node: node as NodeName,
  origin: `${node}~b` as OriginId,
  vv: new Map(origins.map((o) => [o as OriginId, 1])),
});

/** One direction of a link: a sender's table and its receiver's, over messages in order. */
function direction() {
  const sent = new SentStrings();
  const received = new ReceivedStrings();
  return {
    /** Encodes, "sends" (or drops before sending), and decodes what was sent. */
    carry(m: PeerMessage, send = true): Buffer {
      const bytes = binaryCodec.encode(m, sent);
      if (!send) return bytes;
      sent.sent();
      expect(binaryCodec.decode(bytes, m.kind, received)).toEqual(m);
      return bytes;
    },
    received,
  };
}

describe("names carried once per direction of a link", () => {
  it("decodes every message of a stream as sent, whatever was sent or dropped before it", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(message, fc.boolean()), { maxLength: 30 }), (stream) => {
        const link = direction();
        for (const [m, send] of stream) link.carry(m, send);
      }),
      { numRuns: 300 },
    );
  });

  it("names a sender and an origin in one byte each once they were sent", () => {
    const link = direction();
    const first = link.carry(ack(["node1~a"]));
    const second = link.carry(ack(["node1~a"]));
    // The first defines node2, node2~b and node1~a; the second only points at them.
    expect(first.length - second.length).toBe(
      "node2".length + "node2~b".length + "node1~a".length + 3,
    );
    expect(second.length).toBe(1 + 1 + 1 + 1 + 1 + 1 + 1);
    // Encoded alone, a message names everything itself.
    expect(binaryCodec.encode(ack(["node1~a"])).length).toBe(first.length);
  });

  it("writes where a message's entries' ts count from as a step from the last one's", () => {
    const at = Date.parse("2026-12-07T10:00:00Z");
    const push = (ts: number): PeerMessage => ({
      kind: "deltas",
      node: "node1" as NodeName,
      origin: "node1~a" as OriginId,
      entries: [
        { origin: "node1~a" as OriginId, seq: 1, post: "p" as PostId, user: "u" as UserId, ts },
      ],
    });
    const link = direction();
    const first = link.carry(push(at));
    // Encoded alone, or first on a link, the step is from 0: the whole ts, six bytes.
    expect(binaryCodec.encode(push(at)).length).toBe(first.length);
    expect(first.length - link.carry(push(at)).length).toBe(
      "node1".length + 1 + "node1~a".length + 1 + 5,
    );
    // tag, names (none new), ts base step (+7 ms), node, sender, one group of origin 1 with one
    // entry: flags, ts 0 from the base, post and user (1 + 1 each).
    expect(link.carry(push(at + 7)).length).toBe(1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 2 + 2);
    // Back in time by 20 s: three bytes for the step, still nothing for the ts.
    expect(link.carry(push(at - 20_000)).length).toBe(14 + 2);
    // A step past MAX_TS_STEP leaves the base where it is; the entry carries the distance.
    link.carry(push(0));
    link.carry(push(MAX_TS_STEP + 1));
    link.carry(push(Number.MAX_SAFE_INTEGER));
    link.carry(push(3));
  });

  it("closes on a ts base it cannot follow: the receiver's and the sender's would differ", () => {
    const m: PeerMessage = {
      kind: "deltas",
      node: "node1" as NodeName,
      origin: "node1~a" as OriginId,
      entries: [],
    };
    const good = binaryCodec.encode(m);
    expect(binaryCodec.decode(good, "deltas", new ReceivedStrings())).toEqual(m);
    // The step follows the names, before node, sender and the group count: 0 there is a step
    // of 0; 1 a step of −1, below 0.
    const below = Buffer.from(good);
    expect(below[good.length - 4]).toBe(0);
    below[good.length - 4] = 1;
    expect(() => binaryCodec.decode(below, "deltas", new ReceivedStrings())).toThrow(
      new StringTableError("bad ts base"),
    );
    // A message of another kind than expected still moves the base.
    const sent = new SentStrings();
    const wrongKind = new ReceivedStrings();
    const first = binaryCodec.encode(
      {
        ...m,
        entries: [{ origin: m.origin, seq: 1, post: "p" as PostId, user: "u" as UserId, ts: 1000 }],
      },
      sent,
    );
    sent.sent();
    expect(() => binaryCodec.decode(first, "sync-reply", wrongKind)).toThrow(/expected kind/);
    const next: PeerMessage = {
      ...m,
      entries: [{ origin: m.origin, seq: 2, post: "p" as PostId, user: "u" as UserId, ts: 1005 }],
    };
    expect(binaryCodec.decode(binaryCodec.encode(next, sent), "deltas", wrongKind)).toEqual(next);
  });

  it("starts a new table when one would pass its bound, and the receiver follows", () => {
    const link = direction();
    const origins = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => `restarted~${(from + i).toString(36)}`);
    link.carry(ack(origins(0, MAX_LINK_STRINGS - 100)));
    const reset = link.carry(ack(origins(MAX_LINK_STRINGS, 200)));
    expect(reset[1]! % 2).toBe(1);
    // After the reset, names of before it are sent again, and decode.
    link.carry(ack(origins(0, 10)));
  });

  it("closes on a table it cannot follow, and refuses alone a message that only names badly", () => {
    const received = new ReceivedStrings();
    const good = binaryCodec.encode(ack(["node1~a"]));
    const badName = Buffer.from(good);
    badName[3] = "~".charCodeAt(0); // "node2" → "~ode2": neither a node name nor an origin id
    expect(() => binaryCodec.decode(badName, "deltas-reply", received)).toThrow(StringTableError);
    // A message of another kind than expected is refused, and its names are still read.
    const wrongKind = new ReceivedStrings();
    expect(() => binaryCodec.decode(good, "sync-reply", wrongKind)).toThrow(/expected kind/);
    expect(wrongKind.origin(1)).toBe("node2~b");
    // An index past the table is the message's fault alone.
    const fresh = new ReceivedStrings();
    binaryCodec.decode(good, "deltas-reply", fresh);
    const sent = new SentStrings();
    binaryCodec.encode(ack(["node1~a"]), sent);
    sent.sent();
    const pointing = binaryCodec.encode(ack(["node1~a"]), sent);
    pointing[pointing.length - 2] = 9;
    let error: unknown;
    try {
      binaryCodec.decode(pointing, "deltas-reply", fresh);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MalformedMessageError);
    expect(error).not.toBeInstanceOf(StringTableError);
  });

  it("refuses a table grown past its bound without a reset", () => {
    const received = new ReceivedStrings();
    const many = (from: number) =>
      ack(
        Array.from({ length: 2000 }, (_, i) => `o~${(from + i).toString(36)}`),
        `node${from}`,
      );
    binaryCodec.decode(binaryCodec.encode(many(0)), "deltas-reply", received);
    binaryCodec.decode(binaryCodec.encode(many(2000)), "deltas-reply", received);
    // Encoded alone, this message says nothing of a reset: the receiver's table would pass 4096.
    expect(() =>
      binaryCodec.decode(binaryCodec.encode(many(4000)), "deltas-reply", received),
    ).toThrow(/more than 4096 names/);
  });
});
