// The production Store: SQLite in WAL mode through better-sqlite3, group-committed.
import { existsSync, statSync } from "node:fs";
import Database from "better-sqlite3";
// The production Store: one SQLite file per node in its data directory, WAL mode, writes
// group-committed through the shared write path (log-store.ts).
import {
  MAX_SEQ,
  type VersionVector,
  type Entry,
  type Like,
  type NodeName,
  type OriginId,
  type PostId,
  type SeqRange,
  type UserId,
} from "../crdt/index.js";
import type { Metrics } from "../telemetry/types.js";
import { Checkpointer } from "./checkpointer.js";
import { ContiguousSaves } from "./contiguous-saves.js";
import { DataDirectory, describe, isCorrupt, isFull } from "./data-dir.js";
import type { SqliteStoreOptions } from "./sqlite-options.js";
import { StorageHealth, type StorageCondition } from "./storage-health.js";
import { DataDirectoryError, StorageFullError, StoreCorruptError } from "./types.js";
import { LogStore } from "./log-store.js";
import { StoreSnapshot, removeStaleSnapshots } from "./snapshot.js";
import {
  META,
  checkIntegrity,
  checkLayout,
  startIncarnation,
  loadVersionVector,
  prepare,
  prepareLayout,
  type Statements,
} from "./sqlite-schema.js";

const DEFAULT_CHECKPOINT_MS = 500;
/**
 * The log's size past which a background checkpoint starts it over (checkpointer.ts): at
 * 1000 likes/s a receiving peer writes about 24 MB of log a second.
 */
const DEFAULT_WAL_RESTART_BYTES = 32 * 2 ** 20;

type EntryRow = [seq: number, post: string, user: string, ts: number, traceparent: string | null];

/** Post ids remembered between transactions: enough for every hot post, bounded in memory. */
const POST_CACHE_SIZE = 65_536;

/** Pages an online backup copies per step, between which the event loop runs. */
const BACKUP_PAGES_PER_STEP = 100;

/** The production Store: one SQLite file per node, WAL mode, group-committed writes. */
export class SqliteStore extends LogStore {
  /** The origin this data directory was last opened with (before this start), if any. */
  previousOrigin: OriginId | undefined;
  private readonly originIds = new Map<OriginId, number>();
  private readonly postIds = new Map<PostId, number>();
  /** New likes per post id in the running transaction: one count update per post, not per like. */
  private readonly countDeltas = new Map<number, number>();
  /**
   * Committed counts by post id, for reads: a count is read far more often than it changes
   * (GET /likes), and a cached one costs a map lookup instead of a query. Moved by the deltas
   * of a commit once it succeeded (a rolled-back one moves nothing); as bounded as the post ids.
   */
  private readonly counts = new Map<number, number>();
  /** Posts read while nobody had liked them (no id): counted 0 without a query until liked. */
  private readonly unliked = new Set<PostId>();
  private size: number;
  private readonly contiguous: ContiguousSaves;

  private checkpointer: Checkpointer | undefined;

  private constructor(
    private readonly db: Database.Database,
    // Held for the store's life: on Node 24 a better-sqlite3 Statement collected by the GC at
    // the wrong moment aborts the process (node::ObjectWrap cleanup-hook assertion).
    private readonly sql: Statements,
    private readonly dir: DataDirectory,
    private readonly health: StorageHealth,
    nodeName: NodeName,
    origin: OriginId,
    vv: VersionVector,
    metrics: Pick<Metrics, "storeCommitted"> | undefined,
  ) {
    super(nodeName, origin, vv, undefined, metrics);
    this.size = sql.setSize.get() as number;
    this.contiguous = new ContiguousSaves(sql.savedUpTo.all() as [number, number][]);
  }

  /**
   * Opens the store in its data directory, which it holds exclusively until closed. A failed
   * start leaves behind nothing it created.
   */
  static open(options: SqliteStoreOptions): SqliteStore {
    const dir = options.directory ?? DataDirectory.open(options.dataDir);
    try {
      // What a killed snapshot download or a served copy left: never a database.
      removeStaleSnapshots(dir.path);
      try {
        return SqliteStore.openIn(dir, options);
      } catch (error) {
        if (!(error instanceof StoreCorruptError) || options.onCorruption !== "refill") throw error;
        options.onMovedAside?.(dir.moveAside(new Date()), error.message);
        return SqliteStore.openIn(dir, options);
      }
    } catch (error) {
      dir.abandon();
      if (isFull(error)) throw new StorageFullError(options.dataDir, describe(error));
      const code = (error as { code?: unknown } | null)?.code;
      if (
        typeof code === "string" &&
        /^(SQLITE_(CANTOPEN|READONLY|IOERR|PERM)|E[A-Z]+$)/.test(code)
      )
        throw new DataDirectoryError(options.dataDir, describe(error, options.dataDir));
      throw error;
    }
  }

  private static openIn(dir: DataDirectory, options: SqliteStoreOptions): SqliteStore {
    const file = dir.dbFile;
    const isNew = !existsSync(file);
    const db = new Database(file);
    try {
      // exec, not pragma(): pragma() prepares a throwaway Statement (see the constructor).
      // The page size applies to a new file only, so it comes before anything is written.
      // 4 KiB: a commit writes every page it dirties to the WAL, and one of a few likes from a
      // peer dirties about a dozen (the like's set page, its count's, the entry's, the origin's
      // contiguous seq, the set's size). With 16 KiB pages such a commit wrote 190 KB of log and
      // cost 40% more time than with 4 KiB; a bulk apply of thousands of likes gains from the
      // larger page, but a node spends its life on small commits. A file keeps the page size it
      // was made with.
      db.exec("PRAGMA page_size = 4096");
      db.exec("PRAGMA journal_mode = WAL");
      db.exec(`PRAGMA synchronous = ${options.fsync === "always" ? "FULL" : "NORMAL"}`);
      db.exec("PRAGMA foreign_keys = OFF");
      db.exec(META);
      const layout = prepareLayout(db);
      if (dir.markedCorrupt) throw new StoreCorruptError(dir.path, "found corrupt while running");
      // Every page of the file, read once: a few seconds at millions of likes (README).
      if (!isNew && options.integrityChecked !== true) checkIntegrity(layout, dir.path);
      checkLayout(db, layout, file);
      const sql = { ...layout, ...prepare(db) };
      const { origin, previous } = startIncarnation(sql, options.nodeName);
      const health = new StorageHealth(dir, options.onCondition);
      const store = new SqliteStore(
        db,
        sql,
        dir,
        health,
        options.nodeName,
        origin,
        loadVersionVector(sql),
        options.metrics,
      );
      store.previousOrigin = previous;
      const everyMs = options.checkpointEveryMs ?? DEFAULT_CHECKPOINT_MS;
      if (everyMs > 0) {
        db.exec("PRAGMA wal_autocheckpoint = 0");
        // No journal_size_limit: cutting the file back when the log starts over made the next
        // commits extend it again (POST p99 38 ms against 6 without, one node under wrk).
        store.checkpointer = new Checkpointer({
          file,
          everyMs,
          restartBytes: options.walRestartBytes ?? DEFAULT_WAL_RESTART_BYTES,
          onFailure: (error) => {
            if (db.open) db.exec("PRAGMA wal_autocheckpoint = 1000");
            options.onCheckpointFailure?.(error);
          },
          onError: (error) => {
            if (error?.code !== undefined) health.failed(error);
            options.onCheckpointError?.(error?.message);
          },
        });
      }
      return store;
    } catch (error) {
      db.close();
      throw isCorrupt(error) ? new StoreCorruptError(dir.path, describe(error)) : error;
    }
  }

  /**
   * A consistent copy of the database for a joining node (snapshot.ts), made with SQLite's
   * online backup in steps between which the event loop runs; writes on this connection while
   * it runs are carried into the copy, so it is the store as of the backup's end. `signal`
   * stops the backup at its next step; the partial copy is removed (StoreSnapshot.make).
   */
  snapshot(signal?: AbortSignal): Promise<StoreSnapshot> {
    this.health.check();
    return StoreSnapshot.make(this.dir.path, async (path) => {
      signal?.throwIfAborted();
      // A progress callback that throws ends the backup (better-sqlite3 closes it); it answers
      // how many pages the next step copies: better-sqlite3's own default.
      const progress = () => {
        signal?.throwIfAborted();
        return BACKUP_PAGES_PER_STEP;
      };
      await this.db.backup(path, { progress });
    });
  }

  /** Whether the store can take writes; while the disk is full, tries one small write a second. */
  condition(): StorageCondition {
    if (this.db.open)
      this.health.probeWhileFull(() =>
        this.transaction(() => this.sql.probe.run(String(Date.now()))),
      );
    return this.health.condition;
  }

  walBytes(): number {
    return statSync(this.dir.walFile, { throwIfNoEntry: false })?.size ?? 0;
  }

  protected override writesHeld(): boolean {
    return this.checkpointer?.restarting() === true;
  }

  protected transaction<T>(fn: () => T): T {
    this.health.check();
    const sizeBefore = this.size;
    try {
      // IMMEDIATE: the write lock is taken first, so a RESTART checkpoint that holds it
      // (checkpointer.ts) is waited for (busy timeout, 5 s); a deferred transaction that read
      // first would fail at its first write instead.
      const result = this.db
        .transaction(() => {
          const result = fn();
          for (const [post, n] of this.countDeltas) this.sql.addCount.run(post, n);
          for (const [id, upTo] of this.contiguous.due()) this.sql.saveUpTo.run(upTo, id);
          return result;
        })
        .immediate();
      for (const [post, n] of this.countDeltas) {
        const cached = this.counts.get(post);
        if (cached !== undefined) this.counts.set(post, cached + n);
      }
      this.contiguous.commit();
      this.health.succeeded();
      return result;
    } catch (error) {
      // Rolled back: forget what the transaction cached, ids included.
      this.size = sizeBefore;
      this.contiguous.forget();
      this.originIds.clear();
      this.postIds.clear();
      throw this.health.failed(error);
    } finally {
      this.countDeltas.clear();
    }
  }

  /** Runs a read; corruption it meets is fatal for the store. */
  private read<T>(fn: () => T): T {
    this.health.check();
    try {
      return fn();
    } catch (error) {
      throw this.health.failed(error);
    }
  }

  protected insertEntry(e: Entry): void {
    if (e.seq > MAX_SEQ) throw new RangeError(`seq ${e.seq} of ${e.origin} is above ${MAX_SEQ}`);
    this.sql.insertEntry.run(
      this.idOf(e.origin),
      e.seq,
      this.postIdOf(e.post),
      e.user,
      e.ts,
      e.traceparent ?? null,
    );
  }

  protected insertLike(post: PostId, user: UserId): boolean {
    return this.addLike(this.postIdOf(post), user);
  }

  protected override insertLikes(likes: readonly Like[]): number {
    // In key order a batch loads and dirties each page of the set view once, not once per like:
    // out of order, a batch larger than the page cache spills and rereads pages all along.
    const keyed = likes.map((like) => ({ post: this.postIdOf(like.post), like }));
    keyed.sort((a, b) => a.post - b.post || compareUtf16(a.like.user, b.like.user));
    let added = 0;
    for (const { post, like } of keyed) if (this.addLike(post, like.user)) added++;
    return added;
  }

  private addLike(post: number, user: UserId): boolean {
    if (this.sql.insertLike.run(post, user).changes === 0) return false;
    this.countDeltas.set(post, (this.countDeltas.get(post) ?? 0) + 1);
    this.size++;
    return true;
  }

  protected saveContiguous(origin: OriginId, upTo: number): void {
    this.contiguous.advance(this.idOf(origin), upTo);
  }

  protected async closeStorage(): Promise<void> {
    this.saveUnsaved();
    // The worker's connection first: the last one to close checkpoints the whole WAL.
    await this.checkpointer?.close();
    if (this.db.open) this.db.close();
    this.dir.release();
  }

  entries(range: SeqRange, limit: number): Entry[] {
    const id = this.read(
      () =>
        this.originIds.get(range.origin) ??
        (this.sql.originId.get(range.origin) as number | undefined),
    );
    if (id === undefined) return [];
    // The bound keeps the rowid range inside this origin's.
    const upTo = Math.min(range.upTo, MAX_SEQ);
    const rows = this.read(
      () => this.sql.range.all(id, range.after, id, upTo, limit) as EntryRow[],
    );
    return rows.map(([seq, post, user, ts, traceparent]) => {
      const base = { origin: range.origin, seq, post: post as PostId, user: user as UserId, ts };
      return traceparent === null ? base : { ...base, traceparent };
    });
  }

  count(post: PostId): number {
    const id = this.postIds.get(post);
    const cached = id === undefined ? undefined : this.counts.get(id);
    if (cached !== undefined) return cached;
    if (id === undefined && this.unliked.has(post)) return 0;
    return this.read(() => {
      const known = id ?? (this.sql.postId.get(post) as number | undefined);
      // A post nobody liked has no id: counting it must not make one.
      if (known === undefined) {
        if (this.unliked.size >= POST_CACHE_SIZE) this.unliked.clear();
        this.unliked.add(post);
        return 0;
      }
      const n = (this.sql.countOf.get(known) as number | undefined) ?? 0;
      if (this.counts.size >= POST_CACHE_SIZE) this.counts.clear();
      this.counts.set(known, n);
      if (id === undefined) this.rememberPost(post, known);
      return n;
    });
  }

  liked(post: PostId, user: UserId): boolean {
    return this.read(() => this.sql.liked.get(post, user) !== undefined);
  }

  users(post: PostId, after: UserId | undefined, limit: number): UserId[] {
    // Valid users are never empty, so '' sorts before every one of them.
    return this.read(() => this.sql.users.all(post, after ?? "", limit) as UserId[]);
  }

  setSize(): number {
    return this.size;
  }

  /**
   * At a clean close, every origin's contiguous seq, so that the next open scans nothing above
   * it. Not written (a full disk, a lost store), the next open finds it again from the entries.
   */
  private saveUnsaved(): void {
    const rows = this.contiguous.unsaved();
    if (rows.length === 0 || !this.db.open || this.health.condition !== "ok") return;
    try {
      this.db
        .transaction(() => {
          for (const [id, upTo] of rows) this.sql.saveUpTo.run(upTo, id);
        })
        .immediate();
      this.contiguous.wrote(rows);
    } catch {
      // Nothing is lost: the entries above the saved seqs are scanned at the next open.
    }
  }

  private idOf(origin: OriginId): number {
    let id = this.originIds.get(origin);
    if (id === undefined) {
      this.sql.addOrigin.run(origin);
      id = this.sql.originId.get(origin) as number;
      this.originIds.set(origin, id);
    }
    return id;
  }

  private postIdOf(post: PostId): number {
    let id = this.postIds.get(post);
    if (id === undefined) {
      id =
        (this.sql.postId.get(post) as number | undefined) ??
        Number(this.sql.addPost.run(post).lastInsertRowid);
      this.unliked.delete(post);
      this.rememberPost(post, id);
    }
    return id;
  }

  private rememberPost(post: PostId, id: number): void {
    if (this.postIds.size >= POST_CACHE_SIZE) this.postIds.clear();
    this.postIds.set(post, id);
  }
}

/** Close enough to the set view's UTF-8 order for locality; correctness does not depend on it. */
function compareUtf16(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
