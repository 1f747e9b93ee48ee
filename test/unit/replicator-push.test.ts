// The replicator's pushes: a new like sent at once on an idle link, then once per
// LIKES_PUSH_MS, to every peer together; a push past a gap refused and sent again; the
// hand-off before a stop.
import { describe, expect, it } from "vitest";
import type { PostId, UserId } from "../../src/crdt/index.js";
import { noMetrics } from "../../src/telemetry/types.js";
import { scheduleLikes, simNetwork, twoNodes } from "./replicator-harness.js";

describe("replicator", () => {
  it("pushes a new like within a few push intervals and reports its convergence", async () => {
    const converged: number[] = [];
    const { scheduler, a, b } = twoNodes({
      ...noMetrics,
      entryConverged: (_, seconds) => converged.push(seconds),
    });
    a.replicator.start();
    b.replicator.start();
    const write = a.replicator.write({ post: "p" as PostId, user: "u" as UserId }, "all", 1000);
    await scheduler.runUntil(scheduler.now() + 50);
    expect(await write).toEqual({ isNew: true, acks: 2, required: 2 });
    expect(b.store.count("p" as PostId)).toBe(1);
    expect(converged).toHaveLength(1);
    expect(converged[0]).toBeLessThan(0.05);
    a.replicator.stop();
    b.replicator.stop();
  });

  it("sends the push of a like on an idle link before the write goes on", async () => {
    const { scheduler, node } = simNetwork(7);
    const pushed: number[] = [];
    const a = node("a", ["b"], {
      wrapTransport: (inner) => ({
        send: (to, request) => {
          if (request.kind === "deltas") pushed.push(request.entries.length);
          return inner.send(to, request);
        },
      }),
    });
    const b = node("b", ["a"]);
    a.replicator.start();
    b.replicator.start();
    // The greetings (empty pushes) are answered: the link to b is idle.
    await scheduler.runUntil(scheduler.now() + 10);
    pushed.length = 0;
    // What the write's caller sees when it goes on (answers the like): the push already sent,
    // not waiting for a timer of the clock, which has not moved.
    let pushedWhenAnswered: number[] | undefined;
    const write = a.replicator
      .write({ post: "p" as PostId, user: "u" as UserId }, "local", 1000)
      .then(() => (pushedWhenAnswered = [...pushed]));
    await scheduler.runUntil(scheduler.now());
    await write;
    expect(pushedWhenAnswered).toEqual([1]);
    a.replicator.stop();
    b.replicator.stop();
  });

  it("pushes to a peer at most once per LIKES_PUSH_MS: likes within it go out together", async () => {
    const { scheduler, node } = simNetwork(7);
    const pushed: { at: number; entries: number }[] = [];
    const a = node("a", ["b"], {
      syncMs: 3_600_000,
      wrapTransport: (inner) => ({
        send: (to, request) => {
          if (request.kind === "deltas" && request.entries.length > 0)
            pushed.push({ at: scheduler.now(), entries: request.entries.length });
          return inner.send(to, request);
        },
      }),
    });
    const b = node("b", ["a"], { syncMs: 3_600_000 });
    a.replicator.start();
    b.replicator.start();
    await scheduler.runUntil(scheduler.now() + 10);
    const start = scheduler.now();
    // A like every millisecond for 20 ms: the first goes at once, the rest in batches 5 ms apart.
    scheduleLikes(scheduler, [[a, "u"]], 20);
    await scheduler.runUntil(start + 100);
    expect(b.store.count("p" as PostId)).toBe(20);
    expect(pushed[0]).toEqual({ at: start, entries: 1 });
    expect(pushed.reduce((n, p) => n + p.entries, 0)).toBe(20);
    for (let i = 1; i < pushed.length; i++)
      expect(pushed[i]!.at - pushed[i - 1]!.at).toBeGreaterThanOrEqual(5);
    expect(pushed.length).toBeLessThanOrEqual(6);
    a.replicator.stop();
    b.replicator.stop();
  });

  it("does not take a push past a gap (an earlier one was lost): the pusher sends again at once", async () => {
    const { scheduler, node } = simNetwork(7);
    let lost = false;
    // A pace much longer than a round trip: sent again at once is not sent again at the pace.
    const pushMs = 50;
    const a = node("a", ["b"], {
      pushMs,
      syncMs: 3_600_000,
      wrapTransport: (inner) => ({
        send: (to, request) => {
          // The first push of a like never arrives; its sender learns so only at a timeout.
          if (request.kind === "deltas" && request.entries.length > 0 && !lost) {
            lost = true;
            return new Promise((_, reject) =>
              scheduler.setTimeout(() => reject(new Error("timed out")), 2000),
            );
          }
          return inner.send(to, request);
        },
      }),
    });
    const p = "p" as PostId;
    const heldByB: { at: number; seqs: number[] }[] = [];
    let secondHeldBeforeResend: boolean | undefined;
    const b = node("b", ["a"], {
      syncMs: 3_600_000,
      onRequest: (request) => {
        if (request.kind !== "deltas" || request.entries.length === 0) return;
        heldByB.push({ at: scheduler.now(), seqs: request.entries.map((e) => e.seq) });
        if (heldByB.length === 2) secondHeldBeforeResend = b.store.liked(p, "u2" as UserId);
      },
    });
    a.replicator.start();
    b.replicator.start();
    await scheduler.runUntil(scheduler.now() + 10);
    void a.replicator.write({ post: p, user: "u1" as UserId }, "local", 1000);
    await scheduler.runUntil(scheduler.now() + 10);
    void a.replicator.write({ post: p, user: "u2" as UserId }, "local", 1000);
    await scheduler.runUntil(scheduler.now() + 3 * pushMs);
    // The second push came alone, at its pace, and was not taken; the one sent again as soon
    // as its answer came back carried both, long before the lost one timed out, and before
    // any anti-entropy round.
    expect(heldByB.map((h) => h.seqs)).toEqual([[2], [1, 2]]);
    expect(secondHeldBeforeResend).toBe(false);
    expect(heldByB[1]!.at - heldByB[0]!.at).toBeLessThan(pushMs / 2);
    expect(b.store.digest().get(a.store.origin)).toBe(2);
    a.replicator.stop();
    b.replicator.stop();
  });

  it("pushes to a peer when its own pace allows, not at a later peer's", async () => {
    const { scheduler, node } = simNetwork(5);
    const pushMs = 50;
    let start = 0;
    let lostToB = false;
    const pushes: string[] = [];
    const a = node("a", ["b", "c"], {
      pushMs,
      syncMs: 3_600_000,
      wrapTransport: (inner) => ({
        send: (to, request) => {
          if (request.kind !== "deltas" || request.entries.length === 0)
            return inner.send(to, request);
          pushes.push(
            `+${scheduler.now() - start} ${to} ${request.entries.map((e) => e.seq).join()}`,
          );
          // The first push to b is lost: b refuses the next (a gap), which b's timer resends.
          if (to === "b:1" && !lostToB) {
            lostToB = true;
            return new Promise((_, reject) =>
              scheduler.setTimeout(() => reject(new Error("timed out")), 2000),
            );
          }
          return inner.send(to, request);
        },
      }),
    });
    const b = node("b", ["a", "c"], { syncMs: 3_600_000 });
    const c = node("c", ["a", "b"], { syncMs: 3_600_000 });
    for (const n of [a, b, c]) n.replicator.start();
    await scheduler.runUntil(scheduler.now() + 100);
    start = scheduler.now();
    const like = (user: string, level: "local" | "quorum", at: number) =>
      scheduler.setTimeout(
        () => void a.replicator.write({ post: "p" as PostId, user: user as UserId }, level, 1000),
        at,
      );
    like("u1", "local", 0);
    // A writer waiting for replicas pushes at once: c's last push is now at +20.
    like("u2", "quorum", 20);
    like("u3", "local", 60);
    await scheduler.runUntil(start + 3 * pushMs);
    // c is due at +70 (its last push at +20), whatever else is timed for b.
    expect(pushes.filter((p) => p.includes(" c:1 3"))).toEqual(["+70 c:1 3"]);
    for (const n of [a, b, c]) n.replicator.stop();
  });

  it("pushes to its peers together: one within half its pace of being due goes with one that is", async () => {
    const { scheduler, node } = simNetwork(3);
    const pushMs = 50;
    let start = 0;
    const pushes: { at: number; to: string }[] = [];
    const a = node("a", ["b", "c"], {
      pushMs,
      syncMs: 3_600_000,
      wrapTransport: (inner) => ({
        send: (to, request) => {
          if (request.kind === "deltas" && request.entries.length > 0)
            pushes.push({ at: scheduler.now() - start, to });
          return inner.send(to, request);
        },
      }),
    });
    const b = node("b", ["a"], { syncMs: 3_600_000 });
    const c = node("c", ["a"], { syncMs: 3_600_000 });
    // c is unreachable until +25: the first push to it is lost (its answer would come after the
    // run), so the next is refused past a gap and sent again at once, out of step with b's.
    c.endpoint.alive = false;
    for (const n of [a, b, c]) n.replicator.start();
    await scheduler.runUntil(scheduler.now() + 100);
    start = scheduler.now();
    scheduleLikes(scheduler, [[a, "u"]], 30, { everyMs: 10 });
    scheduler.setTimeout(() => (c.endpoint.alive = true), 25);
    await scheduler.runUntil(start + 500);
    expect([b.store.count("p" as PostId), c.store.count("p" as PostId)]).toEqual([30, 30]);
    const to = (peer: string) => pushes.filter((p) => p.to === peer).map((p) => p.at);
    const [toB, toC] = [to("b:1"), to("c:1")];
    const seen = `b ${toB.join()}; c ${toC.join()}`;
    // Past c's catch-up, each push to one peer goes with one to the other, at the pace; b, which
    // never lacks anything, is never pushed to within half a pace.
    const settled = (times: number[]) => times.filter((t) => t >= 2 * pushMs);
    expect(settled(toC), seen).toEqual(settled(toB));
    expect(settled(toC).length, seen).toBeGreaterThanOrEqual(4);
    for (const times of [toB, settled(toC)])
      for (let i = 1; i < times.length; i++)
        expect(times[i]! - times[i - 1]!, seen).toBeGreaterThanOrEqual(pushMs);
    for (const n of [a, b, c]) n.replicator.stop();
  });

  it("hands off before a stop what the push pace still holds, and waits for no down peer", async () => {
    const { scheduler, node } = simNetwork(7);
    const pushMs = 50;
    const a = node("a", ["b", "c"], { pushMs, syncMs: 3_600_000 });
    const b = node("b", ["a"], { syncMs: 3_600_000 });
    // c is listed but never answers: down after its greeting fails.
    a.replicator.start();
    b.replicator.start();
    await scheduler.runUntil(scheduler.now() + 3000);
    expect(a.replicator.view().peers.map((p) => [p.address, p.up])).toEqual([
      ["b:1", true],
      ["c:1", false],
    ]);
    // The first like goes at once; the next two wait for the pace, which a stop would cut.
    for (const user of ["u1", "u2", "u3"]) {
      void a.replicator.write({ post: "p" as PostId, user: user as UserId }, "local", 1000);
      await scheduler.runUntil(scheduler.now() + 1);
    }
    expect(b.store.count("p" as PostId)).toBe(1);
    const start = scheduler.now();
    let handedOffAt: number | undefined;
    // As the node's stop does: replication stops once the hand-off returns.
    const handOff = a.replicator.handOff(1000).then(() => {
      handedOffAt = scheduler.now();
      a.replicator.stop();
    });
    await scheduler.runUntil(start + 2000);
    await handOff;
    expect(b.store.count("p" as PostId)).toBe(3);
    // At once, not at the pace, and not at the timeout: c, down, is not waited for.
    expect(handedOffAt! - start).toBeLessThan(pushMs / 2);
    b.replicator.stop();
  });

  it("pushes a like a writer waits replicas for as soon as the push in flight is answered, not at the pace", async () => {
    const { scheduler, node } = simNetwork(7);
    const pushMs = 50;
    const a = node("a", ["b"], { pushMs, syncMs: 3_600_000 });
    const b = node("b", ["a"], { syncMs: 3_600_000 });
    a.replicator.start();
    b.replicator.start();
    await scheduler.runUntil(scheduler.now() + 3000);
    // The first like goes at once (the link is idle); the second, waiting for both nodes,
    // finds that push in flight (a round trip is 2-6 ms here).
    void a.replicator.write({ post: "p" as PostId, user: "u1" as UserId }, "local", 1000);
    await scheduler.runUntil(scheduler.now() + 1);
    const start = scheduler.now();
    let answeredAt: number | undefined;
    const write = a.replicator
      .write({ post: "p" as PostId, user: "u2" as UserId }, "all", 1000)
      .then((outcome) => {
        answeredAt = scheduler.now();
        return outcome;
      });
    await scheduler.runUntil(start + 200);
    expect(await write).toMatchObject({ isNew: true, acks: 2, required: 2 });
    expect(b.store.count("p" as PostId)).toBe(2);
    // Two round trips at most, not the pace after the first.
    expect(answeredAt! - start).toBeLessThan(pushMs / 2);
    a.replicator.stop();
    b.replicator.stop();
  });
});
