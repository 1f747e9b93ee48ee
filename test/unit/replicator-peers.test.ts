// The replicator's peers: greetings at start, each peer's view, probes after a partition, the
// vectors it learns and believes, and what it answers to a push and a sync.
import { describe, expect, it } from "vitest";
import {
  MAX_SEQ,
  type Entry,
  type NodeName,
  type OriginId,
  type PostId,
  type UserId,
} from "../../src/crdt/index.js";
import { StoreCorruptError } from "../../src/store/index.js";
import { bulk, simNetwork, twoNodes } from "./replicator-harness.js";

describe("replicator", () => {
  it("shows each peer's state, acknowledged vector and pending entries", async () => {
    const { scheduler, a, b, network } = twoNodes();
    a.replicator.start();
    b.replicator.start();
    b.endpoint.alive = false;
    void a.replicator.write({ post: "p" as PostId, user: "u" as UserId }, "local", 1000);
    await scheduler.runUntil(scheduler.now() + 2500);
    const down = a.replicator.view().peers[0];
    expect(down).toMatchObject({ address: "b:1", up: false, pending: 1 });
    b.endpoint.alive = true;
    network.heal();
    await scheduler.runUntil(scheduler.now() + 3000);
    expect(a.replicator.view().peers[0]).toMatchObject({ node: "b", up: true, pending: 0 });
    a.replicator.stop();
    b.replicator.stop();
  });

  it("probes its other down peers as soon as one answers again, not at the end of their backoff", async () => {
    const { scheduler, network, node } = simNetwork(11);
    // No anti-entropy round in the test's time and a long backoff: only the retries probe.
    const slow = { syncMs: 3_600_000, retryMaxMs: 10_000 };
    const a = node("a", ["b", "c"], slow);
    const b = node("b", ["a", "c"], slow);
    const c = node("c", ["a", "b"], slow);
    const all = [a, b, c];
    for (const n of all) n.replicator.start();
    await scheduler.runUntil(scheduler.now() + 100);
    network.partition([["a:1", "b:1"], ["c:1"]]);
    // Writes on both sides: each side's pushes fail, so each sees the other down.
    void a.replicator.write({ post: "p" as PostId, user: "u" as UserId }, "local", 1000);
    void c.replicator.write({ post: "q" as PostId, user: "u" as UserId }, "local", 1000);
    await scheduler.runUntil(scheduler.now() + 60_000);
    const upSeenBy = (n: (typeof all)[number]) =>
      n.replicator.view().peers.filter((p) => p.up).length;
    expect(upSeenBy(c)).toBe(0);
    network.heal();
    // The first retry to answer, on either side, comes within the backoff's max.
    const healed = scheduler.now();
    while (upSeenBy(c) === 0) {
      expect(scheduler.now() - healed).toBeLessThan(10_000);
      await scheduler.runUntil(scheduler.now() + 1);
    }
    // Then c probes the other at once: a few network delays, not another retry of 5-10 s.
    await scheduler.runUntil(scheduler.now() + 50);
    expect(all.map(upSeenBy)).toEqual([2, 2, 2]);
    expect(c.store.count("p" as PostId)).toBe(1);
    expect(b.store.count("q" as PostId)).toBe(1);
    for (const n of all) n.replicator.stop();
  });

  it("believes no claim of more of its own likes than it made, nor of origins it does not hold", async () => {
    const { scheduler, a, b } = twoNodes();
    a.replicator.start();
    b.replicator.start();
    const write = a.replicator.write({ post: "p" as PostId, user: "u" as UserId }, "local", 1000);
    await scheduler.runUntil(scheduler.now() + 50);
    await write;
    // b, buggy or hostile, claims every seq of a's origin and of one nobody holds.
    await a.replicator.handle({
      kind: "sync",
      node: b.store.nodeName,
      origin: b.store.origin,
      vv: new Map([
        [a.store.origin, MAX_SEQ],
        ["nobody~1" as OriginId, MAX_SEQ],
      ]),
    });
    expect(a.replicator.view().peers[0]?.acked).toEqual({ [a.store.origin]: 1 });
    // So a write that asks for b still waits for b's real acknowledgement.
    expect(a.replicator.acksFor(2)).toBe(1);
    a.replicator.stop();
    b.replicator.stop();
  });

  it("answers a push with the pushed origins' seqs and a sync with what differs, nothing more", async () => {
    const { scheduler, a, b } = twoNodes();
    await Promise.all([b.store.apply(bulk(3)), scheduler.runUntil(scheduler.now() + 1)]);
    const sender = { node: a.store.nodeName, origin: a.store.origin };
    const own: Entry = { ...bulk(1)[0]!, origin: a.store.origin };
    const [pushed] = await Promise.all([
      b.replicator.handle({ kind: "deltas", ...sender, entries: [own] }),
      scheduler.runUntil(scheduler.now() + 1),
    ]);
    expect(pushed).toMatchObject({ kind: "deltas-reply", vv: new Map([[a.store.origin, 1]]) });
    const converged = await b.replicator.handle({ kind: "sync", ...sender, vv: b.store.digest() });
    expect(converged).toMatchObject({ kind: "sync-reply", entries: [], diff: new Map() });
    const behind = await b.replicator.handle({
      kind: "sync",
      ...sender,
      vv: new Map([
        [a.store.origin, 1],
        ["gone~9" as OriginId, 4],
      ]),
    });
    expect(behind).toMatchObject({
      entries: bulk(3),
      diff: new Map([
        ["old~1", 3],
        ["gone~9", 0],
      ]),
    });
  });

  it("learns a peer's whole vector from a sync reply that holds only the difference", async () => {
    const { scheduler, a, b } = twoNodes();
    // Both hold the same: every sync reply's diff is empty, yet a must learn what b holds.
    await Promise.all([
      a.store.apply(bulk(7)),
      b.store.apply(bulk(7)),
      scheduler.runUntil(scheduler.now() + 1),
    ]);
    const kinds: string[] = [];
    const handle = b.endpoint.handle;
    b.endpoint.handle = (request) => {
      kinds.push(
        request.kind === "deltas" && request.entries.length === 0 ? "greeting" : request.kind,
      );
      return handle(request);
    };
    // Only a syncs: b answers, so b's own requests cannot tell a what b holds.
    a.replicator.start();
    await scheduler.runUntil(scheduler.now() + 2500);
    expect(a.store.digest().get("old~1" as OriginId)).toBe(7);
    expect(a.replicator.view().peers[0]?.acked).toMatchObject({ "old~1": 7 });
    expect(a.replicator.view().peers[0]?.pending).toBe(0);
    // Nothing pushed back: a knew b held it all.
    expect(kinds.filter((k) => k === "deltas")).toEqual([]);
    expect(kinds.length).toBeGreaterThan(1);
    a.replicator.stop();
  });

  it("greets its peers at start: both know the other is up before any write or sync", async () => {
    const { scheduler, a, b } = twoNodes();
    const first: string[] = [];
    for (const node of [a, b]) {
      const handle = node.endpoint.handle;
      node.endpoint.handle = (request) => {
        if (first.length < 2)
          first.push(`${request.kind}:${request.kind === "deltas" ? request.entries.length : "-"}`);
        return handle(request);
      };
    }
    expect(a.replicator.view().peers).toEqual([]);
    a.replicator.start();
    b.replicator.start();
    await scheduler.runUntil(scheduler.now() + 50);
    // The first messages are the two empty pushes, whatever the random sync timers do later.
    expect(first).toEqual(["deltas:0", "deltas:0"]);
    for (const [node, other] of [
      [a, "b"],
      [b, "a"],
    ] as const)
      expect(node.replicator.view().peers).toMatchObject([{ node: other, up: true }]);
    a.replicator.stop();
    b.replicator.stop();
  });

  it("has the transport forget a peer that leaves the membership, and only then", async () => {
    const { scheduler, node } = simNetwork(7);
    let members = ["b:1", "c:1"];
    const forgotten: string[] = [];
    const a = node("a", [], {
      membership: { peers: () => members },
      wrapTransport: (transport) => ({
        send: (peer, request) => transport.send(peer, request),
        forget: (peer) => forgotten.push(peer),
      }),
    });
    node("b", []);
    node("c", []);
    a.replicator.start();
    await scheduler.runUntil(scheduler.now() + 50);
    expect(forgotten).toEqual([]);
    // A new list without c (the membership's lists are replaced, never changed in place).
    members = ["b:1"];
    // Anti-entropy's next round reads the membership again.
    await scheduler.runUntil(scheduler.now() + 3_000);
    expect(forgotten).toEqual(["c:1"]);
    expect(a.replicator.view().peers.map((p) => p.address)).toEqual(["b:1"]);
    a.replicator.stop();
  });

  it("answers a sync it cannot read from its store with a rejection, never a throw", async () => {
    const { scheduler, a } = twoNodes();
    // Entries the caller lacks: answering means reading them (committed in virtual time).
    const applied = a.store.apply(bulk(3));
    await scheduler.runUntil(scheduler.now() + 10);
    await applied;
    a.store.entries = () => {
      throw new StoreCorruptError("/data", "a page does not check");
    };
    // A throw would close the link (the transport's frame handler); a rejection is answered
    // as an error (storage_corrupt), which the peer holds as a refusal.
    let answered: Promise<unknown> | undefined;
    expect(() => {
      answered = a.replicator.handle({
        kind: "sync",
        node: "b" as NodeName,
        origin: "b~1" as OriginId,
        vv: new Map(),
      });
    }).not.toThrow();
    await expect(answered).rejects.toBeInstanceOf(StoreCorruptError);
  });
});
