import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { SAVE_EVERY } from "../../src/store/contiguous-saves.js";
import { pageSizeOf, readBytes, savedSeqsOf } from "../support/sqlite-file.js";
import { waitFor } from "../support/wait.js";
import {
  LikeSet,
  MAX_SEQ,
  VersionVector,
  dotKey,
  nodeNameOf,
  isEntry,
  planMerge,
  type Entry,
  type NodeName,
  type OriginId,
  type PostId,
  type UserId,
} from "../../src/crdt/index.js";
import {
  MemoryDisk,
  MemoryStore,
  SchemaVersionError,
  SqliteStore,
  StoreClosedError,
  type ApplyResult,
  type Store,
} from "../../src/store/index.js";

const NODE = "n1" as NodeName;
const post = (s: string) => s as PostId;
const user = (s: string) => s as UserId;
const like = (p: string, u: string) => ({ post: post(p), user: user(u) });

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

const remote = (seq: number, p: string, u: string, origin = "n2~abc"): Entry => ({
  origin: origin as OriginId,
  seq,
  post: post(p),
  user: user(u),
  ts: 1_700_000_000_000 + seq,
});

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

describe("the SQLite store", () => {
  const dirs: string[] = [];
  const newDir = () => {
    const dir = mkdtempSync(join(tmpdir(), "likes-store-"));
    dirs.push(dir);
    return dir;
  };
  const openAt = (dataDir: string, checkpointEveryMs?: number) =>
    SqliteStore.open({ dataDir, nodeName: NODE, fsync: "normal", checkpointEveryMs });
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("writes each origin's contiguous seq now and then, every one at a clean close", async () => {
    const dir = newDir();
    const saved = () => savedSeqsOf(join(dir, "likes.db"));
    const store = openAt(dir);
    let seq = 0;
    const batch = (n: number) =>
      Array.from({ length: n }, () => remote(++seq, `p${seq % 7}`, `u${seq}`));
    await store.apply(batch(10));
    // A commit of a few likes leaves the row as it was; one that moves it by SAVE_EVERY writes it.
    expect(saved().get("n2~abc") ?? 0).toBe(0);
    await store.apply(batch(SAVE_EVERY));
    expect(saved().get("n2~abc")).toBe(SAVE_EVERY + 10);
    await store.apply(batch(3));
    // A transaction that rolls back saves nothing of what it advanced (a seq above MAX_SEQ fails it).
    await expect(store.apply([...batch(2), remote(MAX_SEQ + 1, "p", "x")])).rejects.toThrow(
      RangeError,
    );
    expect(saved().get("n2~abc")).toBe(SAVE_EVERY + 10);
    await store.close();
    expect(saved().get("n2~abc")).toBe(SAVE_EVERY + 13);
    // The set's size too, for an earlier version opened on the directory (it reads it there).
    const db = new Database(join(dir, "likes.db"), { readonly: true });
    expect(db.prepare("SELECT value FROM meta WHERE key = 'set_size'").pluck().get()).toBe(
      String(SAVE_EVERY + 13),
    );
    db.close();
    const reopened = openAt(dir);
    expect(reopened.digest().get("n2~abc" as OriginId)).toBe(SAVE_EVERY + 13);
    expect(reopened.setSize()).toBe(SAVE_EVERY + 13);
    await reopened.close();
  });

  it("refuses a data directory written by the old layout, and says what to do", () => {
    const dir = newDir();
    const db = new Database(join(dir, "likes.db"));
    db.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE entries (origin INTEGER NOT NULL, seq INTEGER NOT NULL, post_id TEXT NOT NULL,
        user_id TEXT NOT NULL, ts INTEGER NOT NULL, traceparent TEXT, PRIMARY KEY (origin, seq))
        WITHOUT ROWID;
      INSERT INTO meta (key, value) VALUES ('origin', 'n1~old');
    `);
    db.close();
    expect(() => openAt(dir)).toThrow(SchemaVersionError);
    expect(() => openAt(dir)).toThrow(/older version of likes.*refills from its peers/);
  });

  it("refuses a data directory of an unknown schema version", async () => {
    const dir = newDir();
    await openAt(dir).close();
    const db = new Database(join(dir, "likes.db"));
    db.exec("UPDATE meta SET value = '99' WHERE key = 'schema_version'");
    db.close();
    expect(() => openAt(dir)).toThrow(/written by schema 99; this version reads schema 2/);
  });

  it("keeps the entries of each origin apart, up to the largest seq", async () => {
    // An entry's rowid packs its origin's index and its seq: the ranges must not overlap.
    const dir = newDir();
    let store = openAt(dir);
    const a = "a~1" as OriginId;
    const b = "b~2" as OriginId;
    await store.apply([
      remote(1, "p", "a1", a),
      remote(1, "q", "b1", b),
      remote(MAX_SEQ, "q", "aMax", a),
      remote(2, "p", "b2", b),
      remote(MAX_SEQ - 1, "r", "bBig", b),
    ]);
    const all = { after: 0, upTo: MAX_SEQ };
    expect(store.entries({ origin: a, ...all }, 10).map((e) => [e.seq, e.user])).toEqual([
      [1, "a1"],
      [MAX_SEQ, "aMax"],
    ]);
    expect(store.entries({ origin: b, ...all }, 10).map((e) => [e.seq, e.post])).toEqual([
      [1, "q"],
      [2, "p"],
      [MAX_SEQ - 1, "r"],
    ]);
    await store.close();
    store = openAt(dir);
    // Reopened, each origin's entries above its gap are still known, and only its own.
    expect(store.digest().get(a)).toBe(1);
    expect(store.digest().get(b)).toBe(2);
    const again = await store.apply([
      remote(MAX_SEQ, "p", "again", a),
      remote(MAX_SEQ - 1, "p", "again", b),
      remote(MAX_SEQ - 1, "p", "again", a),
    ]);
    expect(again.stored.map((e) => [e.origin, e.seq])).toEqual([[a, MAX_SEQ - 1]]);
    expect(store.count(post("p"))).toBe(3);
    await store.close();
  });

  it("rolls back a failed commit whole, and forgets the post ids it made", async () => {
    const store = openAt(newDir());
    // Counts read before the failed commit are cached; the rollback (which forgets the post
    // ids) must not move them, nor make a post liked since it was counted read as unliked.
    expect(store.count(post("read"))).toBe(0);
    await store.accept(like("read", "a"), 1);
    expect(store.count(post("read"))).toBe(1);
    await expect(
      Promise.all([
        store.accept(like("read", "b"), 1),
        store.apply([{ ...remoteEntry(MAX_SEQ + 1), post: post("read") }]),
      ]),
    ).rejects.toThrow();
    expect(store.count(post("read"))).toBe(1);
    // Past MAX_SEQ the peer guard would have refused the entry; here it fails the commit.
    const tooFar = { ...remoteEntry(MAX_SEQ + 1), post: post("fresh") };
    const results = await Promise.allSettled([
      store.accept(like("fresh", "a"), 1),
      store.apply([tooFar]),
    ]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(isEntry(tooFar)).toBe(false);
    expect(store.setSize()).toBe(1);
    expect(store.count(post("fresh"))).toBe(0);
    expect(store.digest().get(store.origin) ?? 0).toBe(1);
    expect((await store.accept(like("fresh", "a"), 2)).entry?.seq).toBe(2);
    expect(store.count(post("fresh"))).toBe(1);
    expect(store.users(post("fresh"), undefined, 10)).toEqual(["a"]);
    await store.close();
  });

  it("checkpoints the WAL on its worker thread, never in a commit", async () => {
    const fill = async (store: SqliteStore, batches: number) => {
      for (let batch = 0; batch < batches; batch++)
        await store.apply(
          Array.from({ length: 2000 }, (_, i) =>
            remote(batch * 2000 + i + 1, `p${i % 997}`, `u${batch}-${i}`),
          ),
        );
    };
    const dbSize = (dir: string) => statSync(join(dir, "likes.db")).size;
    // A frame of the log is a page and its 24-byte header.
    const walPages = (dir: string) =>
      statSync(join(dir, "likes.db-wal")).size / (pageSizeOf(join(dir, "likes.db")) + 24);

    // A worker that has not run yet: commits go past SQLite's 1000-page automatic checkpoint
    // and the database file stays as it was.
    const idle = newDir();
    const waiting = openAt(idle, 600_000);
    const empty = dbSize(idle);
    await fill(waiting, 40);
    expect(walPages(idle)).toBeGreaterThan(1000);
    expect(dbSize(idle)).toBe(empty);
    await waiting.close();
    // Closing checkpoints everything; nothing was lost.
    const reopened = openAt(idle);
    expect(reopened.setSize()).toBe(80_000);
    await reopened.close();

    // A running worker copies the WAL into the database while the store is open.
    const busy = newDir();
    const store = openAt(busy, 20);
    const before = dbSize(busy);
    await fill(store, 5);
    await waitFor("the worker's checkpoint", () => dbSize(busy) > before);
    await store.apply([remote(1_000_000, "after", "checkpoint")]);
    expect(store.count(post("after"))).toBe(1);
    await store.close();
  });

  it("starts the WAL over under writes that never pause, so it does not grow without bound", async () => {
    const dir = newDir();
    const wal = join(dir, "likes.db-wal");
    const restartBytes = 2 * 2 ** 20;
    const store = SqliteStore.open({
      dataDir: dir,
      nodeName: NODE,
      fsync: "normal",
      checkpointEveryMs: 10,
      walRestartBytes: restartBytes,
    });
    // The header's checkpoint sequence counts the times the log started over.
    const restarts = () => readBytes(wal, 12, 4).readUInt32BE(0);
    // Commits back to back, each dirtying some 20 pages (a like per post): the worker's
    // PASSIVE checkpoint never finds a moment with nothing new to copy.
    let seq = 0;
    let commits = 0;
    const write = async () => {
      const batch = Array.from({ length: 20 }, (_, i) =>
        remote(++seq, `p${(commits * 20 + i) % 997}`, `u${seq}`),
      );
      await store.apply(batch);
      commits++;
    };
    // The worker up first (its first restart seen): on a loaded machine its start alone can
    // outlast a thousand commits, which is no fault of the restart.
    const first = restarts();
    await waitFor("the checkpoint worker's first restart", async () => {
      await write();
      return restarts() > first;
    });
    // Then the log is started over again and again, and the file (which never shrinks) grows
    // no more than a few bounds past what it was: without the restart it only grows.
    const sizeBefore = statSync(wal).size;
    const started = restarts();
    const deadline = Date.now() + 20_000;
    while (restarts() - started < 3) {
      await write();
      expect(Date.now(), `no restart in ${statSync(wal).size} bytes of log`).toBeLessThan(deadline);
    }
    expect(statSync(wal).size).toBeLessThanOrEqual(Math.max(sizeBefore, 32 * restartBytes));
    // What the likes_store_wal_bytes gauge shows.
    expect(store.walBytes()).toBe(statSync(wal).size);
    // What the restart counters show: the RESTART checkpoints the worker ran, and their time.
    const counted = store.walRestarts()!;
    expect(counted.count).toBeGreaterThanOrEqual(1);
    expect(counted.seconds).toBeGreaterThan(0);
    expect(store.setSize()).toBe(seq);
    await store.close();
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

function remoteEntry(seq: number): Entry {
  return remote(seq, "p", "u");
}
