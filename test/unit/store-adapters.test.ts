// What every store adapter (memory and SQLite) must do alike: accept and apply likes, count and
// page them, keep them across a reopen, follow the CRDT merge rule, and close cleanly.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import {
  LikeSet,
  MAX_SEQ,
  VersionVector,
  dotKey,
  nodeNameOf,
  planMerge,
  type OriginId,
} from "../../src/crdt/index.js";
import {
  MemoryDisk,
  MemoryStore,
  SqliteStore,
  StoreClosedError,
  type ApplyResult,
  type Store,
} from "../../src/store/index.js";
import { NODE, like, post, remote, remoteEntry, user } from "./store-harness.js";

/** A store adapter under test: `open` again after `close` must find the same data. */
interface Harness {
  open(): Store;
  cleanup(): void;
}

const adapters: Record<string, () => Harness> = {
  memory: () => {
    const disk = new MemoryDisk();
    return { open: () => MemoryStore.open(NODE, { disk }), cleanup: () => {} };
  },
  sqlite: () => {
    const dir = mkdtempSync(join(tmpdir(), "likes-store-"));
    return {
      open: () => SqliteStore.open({ dataDir: dir, nodeName: NODE, fsync: "normal" }),
      cleanup: () => rmSync(dir, { recursive: true, force: true }),
    };
  },
};

for (const [name, make] of Object.entries(adapters)) {
  describe(`${name} store`, () => {
    let harness: Harness;
    let store: Store;
    const open = () => {
      harness = make();
      store = harness.open();
      return store;
    };
    afterEach(async () => {
      await store.close();
      harness.cleanup();
    });

    it("accepts a new like with the next dot, and a repeat without one", async () => {
      open();
      const first = await store.accept(like("p", "u"), 1000);
      expect(first.isNew).toBe(true);
      expect(first.entry).toMatchObject({
        origin: store.origin,
        seq: 1,
        post: "p",
        user: "u",
        ts: 1000,
      });
      expect(await store.accept(like("p", "u"), 1001)).toEqual({ isNew: false });
      const second = await store.accept(
        like("p", "v"),
        1002,
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      );
      expect(second.entry?.seq).toBe(2);
      expect(second.entry?.traceparent).toBe(
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      );
      expect(store.count(post("p"))).toBe(2);
      expect(store.count(post("unknown"))).toBe(0);
      expect(store.setSize()).toBe(2);
      expect(store.digest().get(store.origin)).toBe(2);
      // Counted while nobody liked it, then liked by a write and by a peer's entry.
      await store.accept(like("unknown", "u"), 1003);
      expect(store.count(post("unknown"))).toBe(1);
      expect(store.count(post("later"))).toBe(0);
      await store.apply([{ ...remoteEntry(1), post: post("later") }]);
      expect(store.count(post("later"))).toBe(1);
    });

    it("shares one commit between concurrent writes and keeps each one's answer", async () => {
      open();
      const results = await Promise.all([
        store.accept(like("p", "a"), 1),
        store.accept(like("p", "a"), 2),
        store.accept(like("p", "b"), 3),
      ]);
      expect(results.map((r) => r.isNew)).toEqual([true, false, true]);
      expect(results.map((r) => r.entry?.seq)).toEqual([1, undefined, 2]);
    });

    it("applies remote entries once, in any order, advancing the version vector over gaps only", async () => {
      open();
      const origin = "n2~abc" as OriginId;
      const r3 = await store.apply([remote(3, "p", "c")]);
      expect(r3.stored).toHaveLength(1);
      expect(store.digest().get(origin) ?? 0).toBe(0);
      await store.apply([remote(1, "p", "a"), remote(1, "p", "a")]);
      expect(store.digest().get(origin)).toBe(1);
      const r2 = await store.apply([remote(2, "p", "b"), remote(3, "p", "c")]);
      expect(r2.stored.map((e) => e.seq)).toEqual([2]);
      expect(store.digest().get(origin)).toBe(3);
      expect(store.count(post("p"))).toBe(3);
      expect(store.entries({ origin, after: 1, upTo: 3 }, 10).map((e) => e.seq)).toEqual([2, 3]);
      expect(store.entries({ origin, after: 0, upTo: 3 }, 2).map((e) => e.seq)).toEqual([1, 2]);
    });

    it("takes a sender's own pushed entries only without a gap, judged at commit", async () => {
      open();
      const origin = "n2~abc" as OriginId;
      // Above a gap: nothing of the sender is stored; another origin's entries are.
      const gapped = await store.apply(
        [remote(3, "p", "c"), remote(1, "q", "x", "n3~def")],
        origin,
      );
      expect(gapped.stored.map((e) => e.origin)).toEqual(["n3~def"]);
      expect(store.liked(post("p"), user("c"))).toBe(false);
      // Two pipelined pushes in one group commit: the second is judged after the first.
      const [first, second] = await Promise.all([
        store.apply([remote(1, "p", "a"), remote(2, "p", "b")], origin),
        store.apply([remote(3, "p", "c"), remote(4, "p", "d")], origin),
      ]);
      expect([first.stored.length, second.stored.length]).toEqual([2, 2]);
      expect(store.digest().get(origin)).toBe(4);
    });

    it("reads a range as wide as MAX_SEQ without walking it", async () => {
      open();
      const origin = "n2~abc" as OriginId;
      await store.apply([
        remote(1, "p", "a"),
        remote(2 ** 39, "p", "b"),
        remote(MAX_SEQ, "p", "c"),
      ]);
      const all = { origin, after: 0, upTo: MAX_SEQ };
      expect(store.entries(all, 10).map((e) => e.seq)).toEqual([1, 2 ** 39, MAX_SEQ]);
      expect(store.entries(all, 2).map((e) => e.seq)).toEqual([1, 2 ** 39]);
      expect(store.entries({ ...all, after: 1, upTo: MAX_SEQ - 1 }, 10).map((e) => e.seq)).toEqual([
        2 ** 39,
      ]);
    });

    it("counts a like carried by two dots once", async () => {
      open();
      await store.accept(like("p", "u"), 1);
      const applied = await store.apply([remote(1, "p", "u")]);
      expect(applied).toMatchObject({ newLikes: 0 });
      expect(applied.stored).toHaveLength(1);
      expect(store.count(post("p"))).toBe(1);
      expect(store.setSize()).toBe(1);
      expect(store.digest().get("n2~abc" as OriginId)).toBe(1);
    });

    it("counts new likes in a batch that carries one like twice, out of key order", async () => {
      open();
      await store.accept(like("q", "held"), 1);
      const applied = await store.apply([
        remote(1, "q", "z"),
        remote(1, "p", "u", "n3~def"),
        remote(2, "q", "held"),
        remote(3, "p", "u"),
        remote(4, "a", "b"),
      ]);
      expect(applied.stored.map((e) => e.seq)).toEqual([1, 1, 2, 3, 4]);
      expect(applied.newLikes).toBe(3);
      expect([store.count(post("q")), store.count(post("p")), store.count(post("a"))]).toEqual([
        2, 1, 1,
      ]);
      expect(store.setSize()).toBe(4);
    });

    it("pages users in UTF-8 byte order", async () => {
      open();
      const users = ["b", "a", "\u{1F600}", "\uFFFD", "Z", "é"];
      for (const u of users) await store.accept(like("p", u), 1);
      const sorted = [...users].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      expect(store.users(post("p"), undefined, 100)).toEqual(sorted);
      const first = store.users(post("p"), undefined, 4);
      expect(first).toEqual(sorted.slice(0, 4));
      expect(store.users(post("p"), first.at(-1), 4)).toEqual(sorted.slice(4));
      expect(store.liked(post("p"), user("é"))).toBe(true);
      expect(store.liked(post("p"), user("e"))).toBe(false);
    });

    it("keeps everything across close and reopen, and starts a new incarnation", async () => {
      open();
      await store.accept(like("p", "a"), 1);
      await store.accept(like("q", "b"), 2);
      await store.apply([remote(1, "p", "x"), remote(3, "p", "z")]);
      const origin = store.origin;
      await store.close();
      store = harness.open();
      // A reopened directory cannot prove it is the latest copy of itself: new likes take a new
      // origin, so no dot is made twice; the old origin's entries stay as they were.
      expect(store.origin).not.toBe(origin);
      expect(nodeNameOf(store.origin)).toBe(nodeNameOf(origin));
      expect(store.count(post("p"))).toBe(3);
      expect(store.setSize()).toBe(4);
      expect(store.digest().get(origin)).toBe(2);
      expect(store.entries({ origin, after: 0, upTo: 2 }, 10).map((e) => e.user)).toEqual([
        "a",
        "b",
      ]);
      expect((await store.accept(like("r", "c"), 3)).entry).toMatchObject({
        origin: store.origin,
        seq: 1,
      });
      // The entry held above the gap is still known after reopening: seq 2 closes the gap.
      await store.apply([remote(2, "p", "y")]);
      expect(store.digest().get("n2~abc" as OriginId)).toBe(3);
    });

    it("stores what the CRDT merge rule plans, for any batches in any order", async () => {
      open();
      let run = 0;
      await fc.assert(
        fc.asyncProperty(storeBatches, fc.boolean(), async (batches, together) => {
          // Each run gets its own origins and posts, so runs share the store but not the data.
          const tag = `r${run++}`;
          const tagged = batches.map((b) =>
            b.map((e) => ({
              ...e,
              origin: `${e.origin}${tag}` as OriginId,
              post: post(tag + e.post),
            })),
          );
          const vv = new VersionVector();
          const likes = new LikeSet();
          const plans = tagged.map((b) => {
            const plan = planMerge(vv, b);
            return {
              stored: plan.stored,
              newLikes: plan.stored.filter((e) => likes.add(e)).length,
            };
          });
          const sizeBefore = store.setSize();
          const results = together
            ? await Promise.all(tagged.map((b) => store.apply(b)))
            : await tagged.reduce<Promise<ApplyResult[]>>(async (done, b) => {
                const before = await done;
                // Counts read between commits are cached: the next commits must move them.
                for (const p of ["p", "q", "r"]) store.count(post(tag + p));
                return [...before, await store.apply(b)];
              }, Promise.resolve([]));
          expect(results).toEqual(plans);
          expect(store.setSize() - sizeBefore).toBe(likes.size);
          for (const p of ["p", "q", "r"])
            expect(store.count(post(tag + p))).toBe(likes.count(post(tag + p)));
          const held = new Set(tagged.flat().map(dotKey));
          for (const origin of new Set(tagged.flat().map((e) => e.origin))) {
            expect(store.digest().get(origin) ?? 0).toBe(vv.get(origin));
            const all = store.entries({ origin, after: 0, upTo: MAX_SEQ }, 100).map(dotKey);
            expect(all).toEqual(
              [...held]
                .filter((k) => k.startsWith(`${origin}#`))
                .sort((a, b) => seqOf(a) - seqOf(b)),
            );
          }
        }),
        { numRuns: name === "sqlite" ? 60 : 300 },
      );
    });

    it("commits what is queued when closed, and refuses writes after", async () => {
      open();
      const pending = store.accept(like("p", "late"), 1);
      await store.close();
      expect((await pending).isNew).toBe(true);
      await expect(store.accept(like("p", "later"), 2)).rejects.toBeInstanceOf(StoreClosedError);
      store = harness.open();
      expect(store.liked(post("p"), user("late"))).toBe(true);
    });
  });
}

describe("a new data directory", () => {
  it("is a new incarnation with a new origin", async () => {
    const a = MemoryStore.open(NODE);
    const b = MemoryStore.open(NODE);
    expect(a.origin).not.toBe(b.origin);
    expect(a.origin.startsWith("n1~")).toBe(true);
    await Promise.all([a.close(), b.close()]);
  });
});

/** Batches of entries of two origins, seqs 1..6, each dot naming one like of a small domain. */
const storeBatches = fc
  .array(fc.tuple(fc.constantFrom("p", "q", "r"), fc.constantFrom("a", "b", "c")), {
    minLength: 12,
    maxLength: 12,
  })
  .chain((likes) => {
    const dots = likes.map(([p, u], i) => remote((i % 6) + 1, p, u, i < 6 ? "x~1" : "y~2"));
    return fc.array(fc.array(fc.constantFrom(...dots), { maxLength: 8 }), { maxLength: 4 });
  });

const seqOf = (key: string) => Number(key.slice(key.indexOf("#") + 1));
