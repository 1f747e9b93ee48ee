// The replicator's pulls: a backlog in pages, a behind node caught up with windowed pages in
// flight, failover to another peer, a stop mid-way, and a peer that refuses windows.
import { describe, expect, it } from "vitest";
import type { OriginId, UserId } from "../../src/crdt/index.js";
import { MAX_PAGE_ENTRIES, type SyncRequest } from "../../src/replication/protocol.js";
import { bulk, simNetwork, twoNodes } from "./replicator-harness.js";

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
});
