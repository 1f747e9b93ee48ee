// The production Store: one SQLite file per node in its data directory, WAL mode, writes
// group-committed through the shared write path (log-store.ts); opened by sqlite-open.ts.
import { statSync } from "node:fs";
import type Database from "better-sqlite3";
import {
  MAX_SEQ,
  type Entry,
  type Like,
  type NodeName,
  type OriginId,
  type PostId,
  type SeqRange,
  type UserId,
} from "../crdt/index.js";
import type { Metrics } from "../telemetry/types.js";
import type { Checkpointer } from "./checkpointer.js";
import { ContiguousSaves } from "./contiguous-saves.js";
import type { DataDirectory } from "./data-dir.js";
import { LogStore } from "./log-store.js";
import { StoreSnapshot } from "./snapshot.js";
import type { SqliteStoreOptions } from "./sqlite-options.js";
import { openDatabase, startCheckpointer, type OpenDatabase } from "./sqlite-open.js";
import type { Statements } from "./sqlite-schema.js";
import type { StorageCondition, StorageHealth } from "./storage-health.js";
import type { WalRestarts } from "./types.js";

type EntryRow = [seq: number, post: string, user: string, ts: number, traceparent: string | null];

/** Post ids remembered between transactions: enough for every hot post, bounded in memory. */
const POST_CACHE_SIZE = 65_536;

/** Pages an online backup copies per step, between which the event loop runs. */
const BACKUP_PAGES_PER_STEP = 100;

/** The production Store: one SQLite file per node, WAL mode, group-committed writes. */
export class SqliteStore extends LogStore {
  /** The origin this data directory was last opened with (before this start), if any. */
  readonly previousOrigin: OriginId | undefined;
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
  /** The size in meta, for an earlier version (sqlite-schema.ts); NaN when there is none. */
  private readonly savedSize: number;
  private readonly contiguous: ContiguousSaves;

  private checkpointer: Checkpointer | undefined;
  private readonly db: Database.Database;
  // Held for the store's life: on Node 24 a better-sqlite3 Statement collected by the GC at
  // the wrong moment aborts the process (node::ObjectWrap cleanup-hook assertion).
  private readonly sql: Statements;
  private readonly dir: DataDirectory;
  private readonly health: StorageHealth;

  private constructor(
    opened: OpenDatabase,
    nodeName: NodeName,
    metrics: Pick<Metrics, "storeCommitted"> | undefined,
  ) {
    super(nodeName, opened.origin, opened.vv, undefined, metrics);
    this.db = opened.db;
    this.sql = opened.sql;
    this.dir = opened.dir;
    this.health = opened.health;
    this.previousOrigin = opened.previousOrigin;
    this.size = this.sql.setSize.get() as number;
    this.savedSize = Number(this.sql.metaValue.get("set_size") ?? Number.NaN);
    this.contiguous = new ContiguousSaves(opened.origins.map(([, upTo, id]) => [id, upTo]));
  }

  /**
   * Opens the store in its data directory, which it holds exclusively until closed. A failed
   * start leaves behind nothing it created (sqlite-open.ts).
   */
  static open(options: SqliteStoreOptions): SqliteStore {
    return openDatabase(options, (opened) => {
      const store = new SqliteStore(opened, options.nodeName, options.metrics);
      store.checkpointer = startCheckpointer(opened, options);
      return store;
    });
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

  walRestarts(): WalRestarts | undefined {
    return this.checkpointer?.restarts();
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
   * it, and the set's size for an earlier version (sqlite-schema.ts). Not written (a full disk,
   * a lost store), the next open finds the seqs again from the entries.
   */
  private saveUnsaved(): void {
    if (!this.db.open || this.health.condition !== "ok") return;
    try {
      // What was committed is the version vector: the rows behind it are written.
      const committed = [...this.digest()].map(
        ([origin, upTo]) => [this.idOf(origin), upTo] as const,
      );
      const rows = this.contiguous.unsaved(committed);
      const size = this.size !== this.savedSize;
      if (rows.length === 0 && !size) return;
      this.db
        .transaction(() => {
          for (const [id, upTo] of rows) this.sql.saveUpTo.run(upTo, id);
          if (size) this.sql.saveSize.run(String(this.size));
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
