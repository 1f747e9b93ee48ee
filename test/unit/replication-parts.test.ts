import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  MAX_FIELD_BYTES,
  type Entry,
  type NodeName,
  type OriginId,
  type PostId,
  type UserId,
} from "../../src/crdt/index.js";
import { replyEnvelope } from "../../src/link/envelope.js";
import { MAX_FRAME_BYTES, TAG_BYTES } from "../../src/link/frames.js";
import { ConvergenceTracker } from "../../src/replication/convergence.js";
import { Outbox } from "../../src/replication/outbox.js";
import { binaryCodec } from "../../src/replication/codec.js";
import {
  MAX_PAGE_BYTES,
  MAX_PAGE_ENTRIES,
  MAX_PUSH_ENTRIES,
  answerDeltas,
  answerSync,
  entryBytes,
  missingEntries,
} from "../../src/replication/protocol.js";
import { MemoryStore } from "../../src/store/index.js";
import type { OwnEntry } from "../../src/telemetry/types.js";

const ORIGIN = "a~1" as OriginId;
const entry = (seq: number, origin = ORIGIN): Entry => ({
  origin,
  seq,
  post: `p${seq % 3}` as PostId,
  user: `u${seq}` as UserId,
  ts: seq,
});

describe("convergence tracker", () => {
  it("reports tracked entries in seq order, once, and forgets the oldest past its capacity", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.oneof(fc.constant("add" as const), fc.nat({ max: 60 })), { maxLength: 80 }),
        (capacity, steps) => {
          const reported: number[] = [];
          const tracker = new ConvergenceTracker(
            { entryConverged: (e: OwnEntry) => reported.push(e.seq) },
            capacity,
          );
          // The reference: an array that drops its head when full.
          const model: number[] = [];
          const expected: number[] = [];
          let seq = 0;
          for (const step of steps) {
            if (step === "add") {
              tracker.add({ seq: ++seq, ts: 0 });
              if (model.length === capacity) model.shift();
              model.push(seq);
            } else {
              tracker.settle(step, 0);
              while (model.length > 0 && (model[0] as number) <= step)
                expected.push(model.shift() as number);
            }
            expect(tracker.length).toBe(model.length);
          }
          expect(reported).toEqual(expected);
        },
      ),
    );
  });

  it("reports the time from acceptance to convergence in seconds", () => {
    const seconds: number[] = [];
    const tracker = new ConvergenceTracker({ entryConverged: (_, s) => seconds.push(s) }, 4);
    tracker.add({ seq: 1, ts: 1000 });
    tracker.settle(1, 1250);
    expect(seconds).toEqual([0.25]);
  });
});

describe("outbox", () => {
  it("hands out contiguous own entries after a seq, at most a push's worth", () => {
    const outbox = new Outbox();
    for (let seq = 1; seq <= MAX_PUSH_ENTRIES + 10; seq++) outbox.add(entry(seq));
    expect(outbox.take(3, 5)?.map((e) => e.seq)).toEqual([4, 5]);
    expect(outbox.take(0, MAX_PUSH_ENTRIES + 10)).toHaveLength(MAX_PUSH_ENTRIES);
  });

  it("keeps entries in seq order whatever order they are added in", () => {
    const outbox = new Outbox();
    for (const seq of [2, 1, 4, 3]) outbox.add(entry(seq));
    expect(outbox.take(0, 4)?.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
  });

  it("answers undefined for what it no longer holds or holds with a gap", () => {
    const outbox = new Outbox();
    for (const seq of [1, 2, 4]) outbox.add(entry(seq));
    expect(outbox.take(0, 4)).toBeUndefined();
    outbox.dropUpTo(2);
    expect(outbox.take(0, 1)).toBeUndefined();
    expect(outbox.take(3, 4)?.map((e) => e.seq)).toEqual([4]);
  });
});

describe("protocol answers", () => {
  const self = { node: "b" as NodeName, origin: "b~1" as OriginId };
  const sender = { node: "a" as NodeName, origin: ORIGIN };
  const push = (entries: readonly Entry[]) => ({ kind: "deltas" as const, ...sender, entries });

  it("answers a push with our seqs of the pushed origins, and what it proves of the sender", async () => {
    const store = MemoryStore.open("b" as NodeName);
    const pushed = [entry(1), entry(2), entry(1, "c~1" as OriginId)];
    await store.apply(pushed);
    const { reply, senderHolds } = answerDeltas(
      self,
      { kind: "deltas", ...sender, entries: pushed },
      store,
    );
    expect(reply).toEqual({
      kind: "deltas-reply",
      ...self,
      vv: new Map([
        [ORIGIN, 2],
        ["c~1", 1],
      ]),
    });
    expect(senderHolds).toEqual(new Map([[ORIGIN, 2]]));
  });

  it("answers a sync with one page of what the caller lacks and says more follow", async () => {
    const store = MemoryStore.open("b" as NodeName);
    await store.apply(Array.from({ length: MAX_PAGE_ENTRIES + 5 }, (_, i) => entry(i + 1)));
    const first = answerSync(self, { kind: "sync", ...sender, vv: new Map() }, store);
    expect(first.entries).toHaveLength(MAX_PAGE_ENTRIES);
    expect(first.more).toBe(true);
    expect(first.diff).toEqual(new Map([[ORIGIN, MAX_PAGE_ENTRIES + 5]]));
    const last = answerSync(
      self,
      { kind: "sync", ...sender, vv: new Map([[ORIGIN, MAX_PAGE_ENTRIES]]) },
      store,
    );
    expect(last.entries.map((e) => e.seq)).toEqual([5001, 5002, 5003, 5004, 5005]);
    expect(last.more).toBe(false);
    const converged = answerSync(
      self,
      { kind: "sync", ...sender, vv: new Map([[ORIGIN, MAX_PAGE_ENTRIES + 5]]) },
      store,
    );
    expect(converged).toEqual({
      kind: "sync-reply",
      ...self,
      entries: [],
      diff: new Map(),
      more: false,
    });
  });

  it("answers a catch-up's windowed sync with that window only, and more when it stopped short", async () => {
    const store = MemoryStore.open("b" as NodeName);
    await store.apply(Array.from({ length: 30 }, (_, i) => entry(i + 1)));
    const ask = (after: number, upTo: number) =>
      answerSync(
        self,
        {
          kind: "sync",
          ...sender,
          vv: new Map([[ORIGIN, 2]]),
          window: { origin: ORIGIN, after, upTo },
        },
        store,
      );
    const inside = ask(10, 20);
    expect(inside.entries.map((e) => e.seq)).toEqual(Array.from({ length: 10 }, (_, i) => 11 + i));
    expect(inside.more).toBe(false);
    // The diff is against the vector sent (what the caller holds), not the window.
    expect(inside.diff).toEqual(new Map([[ORIGIN, 30]]));
    // Past what this node holds, the page ends where its holding does.
    expect(ask(25, 40).entries.map((e) => e.seq)).toEqual([26, 27, 28, 29, 30]);
    expect(ask(30, 40).entries).toEqual([]);
  });

  it("cuts a page of large likes by bytes, so that it fits in one link frame", async () => {
    const store = MemoryStore.open("b" as NodeName);
    const large = (seq: number): Entry => ({
      ...entry(seq),
      post: `p${seq}-`.padEnd(MAX_FIELD_BYTES, "p") as PostId,
      user: `u${seq}-`.padEnd(MAX_FIELD_BYTES, "u") as UserId,
      traceparent: `00-${"1".repeat(32)}-${"2".repeat(16)}-01`,
    });
    const total = 3000;
    await store.apply(Array.from({ length: total }, (_, i) => large(i + 1)));
    let vv = new Map<OriginId, number>();
    let pages = 0;
    for (let more = true; more; pages++) {
      const reply = answerSync(self, { kind: "sync", ...sender, vv }, store);
      expect(reply.entries.length).toBeGreaterThan(0);
      expect(reply.entries.reduce((n, e) => n + entryBytes(e), 0)).toBeLessThanOrEqual(
        MAX_PAGE_BYTES,
      );
      // entryBytes bounds what the codec writes of each entry.
      const written =
        binaryCodec.encode(push(reply.entries)).length - binaryCodec.encode(push([])).length;
      expect(written).toBeLessThanOrEqual(reply.entries.reduce((n, e) => n + entryBytes(e), 0));
      const frame = 4 + replyEnvelope(1, binaryCodec.encode(reply)).length + TAG_BYTES;
      expect(frame).toBeLessThan(MAX_FRAME_BYTES);
      expect(reply.entries[0]?.seq).toBe((vv.get(ORIGIN) ?? 0) + 1);
      vv = new Map([[ORIGIN, reply.entries.at(-1)!.seq]]);
      more = reply.more;
    }
    expect(vv.get(ORIGIN)).toBe(total);
    expect(pages).toBeGreaterThan(1);
    const missing = missingEntries(store, new Map(), MAX_PAGE_ENTRIES);
    expect(missing.length).toBeLessThan(total);
    expect(binaryCodec.encode(push(missing)).length).toBeLessThan(MAX_FRAME_BYTES);
  });
});
