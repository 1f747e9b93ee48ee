// Rides: a node's likes go to a peer on its answer to that peer's push, and the peer's next push
// acknowledges them, so that a loaded pair of nodes exchanges one push a pace, not two; and
// anti-entropy, which does not push again what is on its way.
import { describe, expect, it } from "vitest";
import type { PostId, UserId } from "../../src/crdt/index.js";
import type { Transport } from "../../src/replication/ports.js";
import { simNetwork } from "./replicator-harness.js";

const p = "p" as PostId;
const SYNC_NEVER = { syncMs: 3_600_000 };

/** A transport that counts the pushes a node sends and the rides their answers bring back. */
function counting(counts: { pushes: number; rides: number; acks: number }) {
  return (inner: Transport): Transport => ({
    send: async (to, request) => {
      if (request.kind === "deltas" && (request.entries.length > 0 || request.acks)) {
        counts.pushes++;
        if (request.acks) counts.acks++;
      }
      const reply = await inner.send(to, request);
      if (reply.kind === "deltas-reply" && reply.entries) counts.rides++;
      return reply;
    },
  });
}

describe("replicator rides", () => {
  it("under load on both nodes of a pair, sends one push a pace between them, not one each way", async () => {
    const { scheduler, node } = simNetwork(7);
    const ofA = { pushes: 0, rides: 0, acks: 0 };
    const ofB = { pushes: 0, rides: 0, acks: 0 };
    const a = node("a", ["b"], { ...SYNC_NEVER, wrapTransport: counting(ofA) });
    const b = node("b", ["a"], { ...SYNC_NEVER, wrapTransport: counting(ofB) });
    a.replicator.start();
    b.replicator.start();
    await scheduler.runUntil(scheduler.now() + 10);
    Object.assign(ofA, { pushes: 0, rides: 0, acks: 0 });
    Object.assign(ofB, { pushes: 0, rides: 0, acks: 0 });
    const start = scheduler.now();
    // A like on each node every millisecond for 100 ms: 20 paces of 5 ms.
    for (let i = 0; i < 100; i++)
      scheduler.setTimeout(() => {
        for (const [n, name] of [
          [a, "a"],
          [b, "b"],
        ] as const)
          void n.replicator.write({ post: p, user: `${name}${i}` as UserId }, "local", 1000);
      }, i);
    await scheduler.runUntil(start + 200);
    expect(a.store.count(p)).toBe(200);
    expect(b.store.count(p)).toBe(200);
    // One way pushed at the pace and the other rode on its answers: about 20 pushes, where a
    // push each way would be about 40.
    expect(ofA.pushes + ofB.pushes).toBeLessThanOrEqual(26);
    expect(ofA.rides + ofB.rides).toBeGreaterThanOrEqual(10);
    // Every ride was acknowledged: each node knows the other holds all of its likes.
    expect(a.replicator.acksFor(100)).toBe(2);
    expect(b.replicator.acksFor(100)).toBe(2);
    a.replicator.stop();
    b.replicator.stop();
  });

  it("sends again what rode on an answer that never arrived, well before anti-entropy", async () => {
    const { scheduler, node } = simNetwork(7);
    let dropped = 0;
    // a loses the first ride b sends it, as if the answer's entries never came.
    const a = node("a", ["b"], {
      ...SYNC_NEVER,
      wrapTransport: (inner) => ({
        send: async (to, request) => {
          const reply = await inner.send(to, request);
          if (reply.kind !== "deltas-reply" || !reply.entries || dropped > 0) return reply;
          dropped++;
          return { ...reply, entries: undefined };
        },
      }),
    });
    const b = node("b", ["a"], SYNC_NEVER);
    a.replicator.start();
    b.replicator.start();
    await scheduler.runUntil(scheduler.now() + 10);
    const start = scheduler.now();
    // a pushes every pace for 300 ms; b (whose origin sorts last, so it waits for a's pushes)
    // accepts one like while they go on.
    for (let i = 0; i < 300; i++)
      scheduler.setTimeout(
        () => void a.replicator.write({ post: p, user: `a${i}` as UserId }, "local", 1000),
        i,
      );
    scheduler.setTimeout(
      () => void b.replicator.write({ post: p, user: "b" as UserId }, "local", 1000),
      20,
    );
    let heldAt: number | undefined;
    while (scheduler.now() < start + 400 && heldAt === undefined) {
      await scheduler.runUntil(scheduler.now() + 1);
      if (a.store.liked(p, "b" as UserId)) heldAt = scheduler.now() - start;
    }
    expect(dropped).toBe(1);
    // Lost at about 25 ms; sent again once its ride went unacknowledged for 100 ms.
    expect(heldAt).toBeGreaterThan(100);
    expect(heldAt).toBeLessThan(160);
    a.replicator.stop();
    b.replicator.stop();
  });
});

describe("anti-entropy and what is on its way", () => {
  it("does not push again after a sync what a push in flight carries", async () => {
    const { scheduler, node } = simNetwork(7);
    const sentSeqs: number[] = [];
    const a = node("a", ["b"], {
      syncMs: 50,
      wrapTransport: (inner) => ({
        send: (to, request) => {
          if (request.kind !== "deltas" || request.entries.length === 0)
            return inner.send(to, request);
          sentSeqs.push(...request.entries.map((e) => e.seq));
          // The push of the like takes 300 ms to arrive: several syncs pass meanwhile.
          return new Promise((resolve, reject) =>
            scheduler.setTimeout(() => void inner.send(to, request).then(resolve, reject), 300),
          );
        },
      }),
    });
    const b = node("b", ["a"], { syncMs: 3_600_000 });
    a.replicator.start();
    b.replicator.start();
    await scheduler.runUntil(scheduler.now() + 10);
    void a.replicator.write({ post: p, user: "u" as UserId }, "local", 1000);
    await scheduler.runUntil(scheduler.now() + 500);
    expect(b.store.liked(p, "u" as UserId)).toBe(true);
    expect(sentSeqs).toEqual([1]);
    a.replicator.stop();
    b.replicator.stop();
  });
});
