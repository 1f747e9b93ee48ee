// What only the SQLite store does: its file layout (saved seqs, schema versions, packed rowids),
// rollback of a failed commit, and the WAL checkpoints and restarts of its worker thread.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { SAVE_EVERY } from "../../src/store/contiguous-saves.js";
import { describe as describeError } from "../../src/store/data-dir.js";
import { pageSizeOf, readBytes, savedSeqsOf } from "../support/sqlite-file.js";
import { waitFor } from "../support/wait.js";
import { MAX_SEQ, isEntry, type OriginId } from "../../src/crdt/index.js";
import { SchemaVersionError, SqliteStore } from "../../src/store/index.js";
import { NODE, like, post, remote, remoteEntry } from "./store-harness.js";

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
    expect(store.setSize()).toBe(seq);
    await store.close();
  });

  it("counts the RESTART checkpoints its worker runs, and their time", async () => {
    // The log above restartBytes after any commit: each tick that finds one restarts the log.
    // (Under the writes above, the log may also start over of itself whenever a PASSIVE
    // checkpoint catches up, with no RESTART counted: those counters are checked here.)
    const store = SqliteStore.open({
      dataDir: newDir(),
      nodeName: NODE,
      fsync: "normal",
      checkpointEveryMs: 10,
      walRestartBytes: 1,
    });
    expect(store.walRestarts()).toEqual({ count: 0, seconds: 0 });
    let seq = 0;
    const counted = await waitFor("the worker's RESTART checkpoints", async () => {
      await store.apply([remote(++seq, "p", `u${seq}`)]);
      const restarts = store.walRestarts()!;
      return restarts.count >= 2 && restarts;
    });
    expect(counted.seconds).toBeGreaterThan(0);
    await store.close();
  });
});

describe("describe (what a store's error says)", () => {
  it("reads the message and code the checkpoint worker posts, as an Error's", () => {
    const posted = {
      message: "SqliteError: database disk image is malformed",
      code: "SQLITE_CORRUPT",
    };
    expect(describeError(posted)).toBe(
      "SqliteError: database disk image is malformed (SQLITE_CORRUPT)",
    );
    expect(
      describeError(Object.assign(new Error("disk I/O error"), { code: "SQLITE_IOERR" })),
    ).toBe("disk I/O error (SQLITE_IOERR)");
  });
});
