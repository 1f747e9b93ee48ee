import { describe, expect, it } from "vitest";
import {
  MAX_SEQ,
  type Entry,
  type NodeName,
  type OriginId,
  type PostId,
  type UserId,
} from "../../src/crdt/index.js";
import { StaticMembership, type Transport } from "../../src/replication/ports.js";
import { MAX_PAGE_ENTRIES, type SyncRequest } from "../../src/replication/protocol.js";
import { Replicator } from "../../src/replication/replicator.js";
import { MemoryStore } from "../../src/store/index.js";
import { noMetrics, silentLogger, type Metrics } from "../../src/telemetry/types.js";
import { SimNetwork } from "../sim/network.js";
import { Scheduler, seededRandom } from "../sim/scheduler.js";

interface SimNodeOptions {
  readonly metrics?: Metrics;
  /** LIKES_PUSH_MS; 5 unless given. */
  readonly pushMs?: number;
  readonly syncMs?: number;
  readonly retryMaxMs?: number;
  /** Sees every request the node receives, before it answers. */
  readonly onRequest?: (request: Parameters<Replicator["handle"]>[0]) => void;
  /** Stands between the node and the network, for what it sends. */
  readonly wrapTransport?: (transport: Transport) => Transport;
}

/** Real replicators and memory stores on a simulated network, in virtual time. */
function simNetwork(seed: number) {
  const scheduler = new Scheduler();
  const random = seededRandom(seed);
  const network = new SimNetwork(scheduler, random);
  const node = (name: string, peers: string[], options: SimNodeOptions = {}) => {
    const store = MemoryStore.open(name as NodeName, {
      schedule: (flush) => scheduler.setTimeout(flush, 0),
    });
    const endpoint = {
      address: `${name}:1`,
      alive: true,
      life: 1,
      handle: (r: Parameters<Replicator["handle"]>[0]) => {
        options.onRequest?.(r);
        return replicator.handle(r);
      },
    };
    const replicator: Replicator = new Replicator({
      store,
      transport: (options.wrapTransport ?? ((t) => t))(network.transportFor(endpoint)),
      clock: scheduler,
      random,
      membership: new StaticMembership(peers.map((p) => `${p}:1`)),
      logger: silentLogger,
      pushMs: options.pushMs ?? 5,
      syncMs: options.syncMs ?? 1000,
      ...(options.retryMaxMs === undefined ? {} : { retryMaxMs: options.retryMaxMs }),
      ...(options.metrics ? { metrics: options.metrics } : {}),
    });
    network.attach(endpoint);
    return { store, replicator, endpoint };
  };
  return { scheduler, network, node };
}

function twoNodes(metrics: Metrics = noMetrics) {
  const { scheduler, network, node } = simNetwork(7);
  return { scheduler, network, a: node("a", ["b"], { metrics }), b: node("b", ["a"]) };
}

const bulk = (n: number): Entry[] =>
  Array.from({ length: n }, (_, i) => ({
    origin: "old~1" as OriginId,
    seq: i + 1,
    post: `p${i % 10}` as PostId,
    user: `u${i}` as UserId,
    ts: 1,
  }));

describe("replicator", () => {
  it("pulls a backlog larger than one page in several pages of at most 5000", async () => {
    const { scheduler, a, b } = twoNodes();
    await Promise.all([a.store.apply(bulk(12_345)), scheduler.runUntil(scheduler.now() + 1)]);
    a.replicator.start();
    b.replicator.start();
    await scheduler.runUntil(scheduler.now() + 3000);
    expect(b.store.setSize()).toBe(12_345);
    expect(b.store.digest().get("old~1" as OriginId)).toBe(12_345);
    a.replicator.stop();
    b.replicator.stop();
  });

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
    for (let i = 0; i < 20; i++)
      scheduler.setTimeout(
        () =>
          void a.replicator.write({ post: "p" as PostId, user: `u${i}` as UserId }, "local", 1000),
        i,
      );
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

  it("catches up a behind node whole, with pages in flight, claiming only what it committed", async () => {
    const { scheduler, node } = simNetwork(5);
    const likes = 10 * MAX_PAGE_ENTRIES + 123;
    const held = 2 * MAX_PAGE_ENTRIES;
    let inFlight = 0;
    let maxInFlight = 0;
    const windows: SyncRequest[] = [];
    const claims: string[] = [];
    let committed = (): Map<OriginId, number> => new Map();
    const a = node("a", ["c"]);
    const c = node("c", ["a"], {
      wrapTransport: (inner) => ({
        send: (to, request) => {
          const windowed = request.kind === "sync" && request.window !== undefined;
          if (request.kind === "sync")
            // The peer takes a sync's vector as acknowledged: never a page still on its way.
            for (const [origin, seq] of request.vv)
              if (seq > (committed().get(origin) ?? 0)) claims.push(`${origin}#${seq}`);
          if (!windowed) return inner.send(to, request);
          windows.push(request);
          maxInFlight = Math.max(maxInFlight, ++inFlight);
          const reply = inner.send(to, request);
          void reply.then(
            () => inFlight--,
            () => inFlight--,
          );
          return reply;
        },
      }),
    });
    committed = () => new Map(c.store.digest());
    // c held the first pages, then was down while a took the rest.
    await Promise.all([
      a.store.apply(bulk(likes)),
      c.store.apply(bulk(held)),
      scheduler.runUntil(scheduler.now() + 1),
    ]);
    a.replicator.start();
    c.replicator.start();
    for (let t = 0; c.store.setSize() < likes && t < 5000; t += 10)
      await scheduler.runUntil(scheduler.now() + 10);
    expect(c.store.setSize()).toBe(likes);
    expect(c.store.digest()).toEqual(a.store.digest());
    // One plain page, then the other eight (the last one short) asked for at once.
    expect(windows.map((w) => w.window?.after)).toEqual(
      Array.from({ length: 8 }, (_, i) => held + (i + 1) * MAX_PAGE_ENTRIES),
    );
    expect(maxInFlight).toBe(8);
    expect(claims).toEqual([]);
    // And a learns that c holds it all (c's next sync says so).
    for (let t = 0; a.replicator.view().peers[0]?.pending !== 0 && t < 5000; t += 10)
      await scheduler.runUntil(scheduler.now() + 10);
    expect(a.replicator.view().peers[0]?.pending).toBe(0);
    a.replicator.stop();
    c.replicator.stop();
  });

  it("asks for the rest of a window whose page stopped at the byte bound", async () => {
    const { scheduler, node } = simNetwork(9);
    const syncs = { plain: 0, rest: 0 };
    const a = node("a", [], {
      onRequest: (r) => {
        if (r.kind !== "sync") return;
        if (!r.window) syncs.plain++;
        else if (r.window.after % MAX_PAGE_ENTRIES !== 0) syncs.rest++;
      },
    });
    const c = node("c", ["a"]);
    // Likes of 256-byte fields: a page holds about 900 of them, a window 5000.
    const likes = bulk(3 * MAX_PAGE_ENTRIES).map((e) => ({
      ...e,
      user: `${e.user}-`.padEnd(256, "u") as UserId,
    }));
    await Promise.all([a.store.apply(likes), scheduler.runUntil(scheduler.now() + 1)]);
    a.replicator.start();
    c.replicator.start();
    for (let t = 0; c.store.setSize() < likes.length && t < 10_000; t += 10)
      await scheduler.runUntil(scheduler.now() + 10);
    expect(c.store.setSize()).toBe(likes.length);
    expect(c.store.digest()).toEqual(a.store.digest());
    // Pulled in windows, each finished by asking for its rest: not page after page plainly.
    expect(syncs.rest).toBeGreaterThan(4);
    expect(syncs.plain).toBeLessThanOrEqual(3);
    a.replicator.stop();
    c.replicator.stop();
  });

  it("goes on with a catch-up from another peer at once when its source fails mid-way", async () => {
    const { scheduler, node } = simNetwork(11);
    const syncsFromC = new Map<string, number>();
    // Rounds far apart: only the failover can move the catch-up on within this test.
    const make = (name: string, peers: string[]) =>
      node(name, peers, {
        syncMs: 60_000,
        onRequest: (r) => {
          if (r.kind === "sync" && r.node === "c")
            syncsFromC.set(name, (syncsFromC.get(name) ?? 0) + 1);
        },
      });
    // a and b do not know c: all that c gets, it pulls itself.
    const a = make("a", ["b"]);
    const b = make("b", ["a"]);
    const c = make("c", ["a", "b"]);
    const likes = 8 * MAX_PAGE_ENTRIES;
    await Promise.all([
      a.store.apply(bulk(likes)),
      b.store.apply(bulk(likes)),
      c.store.apply(bulk(MAX_PAGE_ENTRIES)),
      scheduler.runUntil(scheduler.now() + 1),
    ]);
    for (const node of [a, b, c]) node.replicator.start();
    // Once c's source has the first of its windowed pages to answer, it crashes: what it was
    // answering never arrives.
    const pulled = () => [...syncsFromC.values()].reduce((n, x) => n + x, 0);
    for (let t = 0; pulled() < 2 && t < 90_000; t += 1)
      await scheduler.runUntil(scheduler.now() + 1);
    expect(pulled()).toBeGreaterThanOrEqual(2);
    const source = syncsFromC.has("a") ? a : b;
    const other = source === a ? "b" : "a";
    source.endpoint.alive = false;
    source.endpoint.life++;
    expect(c.store.setSize()).toBeLessThan(likes);
    for (let t = 0; c.store.setSize() < likes && t < 30_000; t += 10)
      await scheduler.runUntil(scheduler.now() + 10);
    expect(c.store.setSize()).toBe(likes);
    expect(c.store.digest().get("old~1" as OriginId)).toBe(likes);
    expect(syncsFromC.get(other)).toBeGreaterThan(1);
    for (const node of [a, b, c]) node.replicator.stop();
  });

  it("ends a catch-up on stop(), sending nothing more and keeping what arrived", async () => {
    const { scheduler, node } = simNetwork(13);
    let syncs = 0;
    const a = node("a", []);
    const c = node("c", ["a"], {
      wrapTransport: (inner) => ({
        send: (to, request) => {
          if (request.kind === "sync") syncs++;
          return inner.send(to, request);
        },
      }),
    });
    const likes = 30 * MAX_PAGE_ENTRIES;
    await Promise.all([a.store.apply(bulk(likes)), scheduler.runUntil(scheduler.now() + 1)]);
    a.replicator.start();
    c.replicator.start();
    // Stopped once its first batch is committed, while the next pages are in flight.
    for (let t = 0; c.store.setSize() <= MAX_PAGE_ENTRIES && t < 10_000; t += 1)
      await scheduler.runUntil(scheduler.now() + 1);
    const held = c.store.setSize();
    expect(held).toBeGreaterThan(MAX_PAGE_ENTRIES);
    c.replicator.stop();
    const asked = syncs;
    await scheduler.runUntil(scheduler.now() + 5000);
    expect(syncs).toBe(asked);
    expect(c.store.setSize()).toBeGreaterThanOrEqual(held);
    expect(c.store.setSize()).toBeLessThan(likes);
    a.replicator.stop();
  });

  it("pages one page at a time from a peer that refuses windowed pages (an older version)", async () => {
    const { scheduler, node } = simNetwork(3);
    let refused = 0;
    const a = node("a", []);
    const c = node("c", ["a"], {
      wrapTransport: (inner) => ({
        send: (to, request) => {
          if (request.kind === "sync" && request.window) {
            refused++;
            // What the link reports when the peer answers `malformed`.
            return Promise.reject(Object.assign(new Error("malformed"), { code: "malformed" }));
          }
          return inner.send(to, request);
        },
      }),
    });
    const likes = 4 * MAX_PAGE_ENTRIES + 1;
    await Promise.all([a.store.apply(bulk(likes)), scheduler.runUntil(scheduler.now() + 1)]);
    a.replicator.start();
    c.replicator.start();
    for (let t = 0; c.store.setSize() < likes && t < 10_000; t += 10)
      await scheduler.runUntil(scheduler.now() + 10);
    expect(c.store.setSize()).toBe(likes);
    expect(refused).toBeGreaterThan(0);
    // The peer was never taken for down.
    expect(c.replicator.view().peers[0]).toMatchObject({ up: true });
    a.replicator.stop();
    c.replicator.stop();
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

  it("pulls what it lacks from a peer as soon as its greeting is answered, not at its first random round", async () => {
    const { scheduler, node } = simNetwork(7);
    // Rounds a minute apart: the first would come long after the test's 100 ms.
    const a = node("a", ["b"], { syncMs: 60_000 });
    const b = node("b", ["a"], { syncMs: 60_000 });
    await Promise.all([b.store.apply(bulk(7)), scheduler.runUntil(scheduler.now() + 1)]);
    b.replicator.start();
    a.replicator.start();
    await scheduler.runUntil(scheduler.now() + 100);
    expect(a.store.digest().get("old~1" as OriginId)).toBe(7);
    a.replicator.stop();
    b.replicator.stop();
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
});
