import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import {
  MAX_SEQ,
  VersionVector,
  isOriginId,
  originId,
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
import { randomIncarnation } from "./incarnation.js";
import { LogStore } from "./log-store.js";

export interface SqliteStoreOptions {
  readonly dataDir: string;
  readonly nodeName: NodeName;
  /** `always`: synchronous=FULL, a commit survives power loss; `normal`: it survives kill -9. */
  readonly fsync: "normal" | "always";
  /** Told the duration of every group commit. */
  readonly metrics?: Pick<Metrics, "storeCommitted">;
  /** WAL checkpoints on a worker thread every this many ms (checkpointer.ts); 0: in commits. */
  readonly checkpointEveryMs?: number;
  /** Told why background checkpoints stopped (commits checkpoint again from then on). */
  readonly onCheckpointFailure?: (error: string) => void;
}

const DEFAULT_CHECKPOINT_MS = 500;

/** The layout this code reads and writes; a data directory with any other is refused. */
const SCHEMA_VERSION = "2";

const META = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
`;

// Rows are kept small because they are most of the disk: a post is stored once and referred to
// by its integer id, and an entry's rowid is its dot (origin index << 40 | seq), so the entries
// of one origin are one rowid range and appends fill pages completely.
const SCHEMA = `
BEGIN;
CREATE TABLE origins (
  id INTEGER PRIMARY KEY,
  origin TEXT NOT NULL UNIQUE,
  upto INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE posts (id INTEGER PRIMARY KEY, post_id TEXT NOT NULL UNIQUE);
CREATE TABLE entries (
  dot INTEGER PRIMARY KEY,
  post INTEGER NOT NULL,
  user_id TEXT NOT NULL,
  ts INTEGER NOT NULL,
  traceparent TEXT
);
CREATE TABLE likes (
  post INTEGER NOT NULL,
  user_id TEXT NOT NULL,
  PRIMARY KEY (post, user_id)
) WITHOUT ROWID;
CREATE TABLE counts (post INTEGER PRIMARY KEY, n INTEGER NOT NULL);
INSERT INTO meta (key, value) VALUES ('schema_version', '${SCHEMA_VERSION}');
COMMIT;
`;

/** The data directory holds a layout this code does not read. */
export class SchemaVersionError extends Error {
  override readonly name = "SchemaVersionError";
}

type EntryRow = [seq: number, post: string, user: string, ts: number, traceparent: string | null];

/** Post ids remembered between transactions: enough for every hot post, bounded in memory. */
const POST_CACHE_SIZE = 65_536;

/** The production Store: one SQLite file per node, WAL mode, group-committed writes. */
export class SqliteStore extends LogStore {
  private readonly originIds = new Map<OriginId, number>();
  private readonly postIds = new Map<PostId, number>();
  /** New likes per post id in the running transaction: one count update per post, not per like. */
  private readonly countDeltas = new Map<number, number>();
  private size: number;

  private checkpointer: Checkpointer | undefined;

  private constructor(
    private readonly db: Database.Database,
    // Held for the store's life: on Node 24 a better-sqlite3 Statement collected by the GC at
    // the wrong moment aborts the process (node::ObjectWrap cleanup-hook assertion).
    private readonly sql: Statements,
    nodeName: NodeName,
    origin: OriginId,
    vv: VersionVector,
    metrics: Pick<Metrics, "storeCommitted"> | undefined,
  ) {
    super(nodeName, origin, vv, undefined, metrics);
    this.size = Number((sql.metaValue.get("set_size") as string | undefined) ?? 0);
  }

  static open(options: SqliteStoreOptions): SqliteStore {
    mkdirSync(options.dataDir, { recursive: true });
    const file = join(options.dataDir, "likes.db");
    const db = new Database(file);
    try {
      // exec, not pragma(): pragma() prepares a throwaway Statement (see the constructor).
      // The page size applies to a new file only, so it comes before anything is written.
      // 16 KiB rather than 4: measured a quarter less CPU per applied like at 5M likes, same disk.
      db.exec("PRAGMA page_size = 16384");
      db.exec("PRAGMA journal_mode = WAL");
      db.exec(`PRAGMA synchronous = ${options.fsync === "always" ? "FULL" : "NORMAL"}`);
      db.exec("PRAGMA foreign_keys = OFF");
      db.exec(META);
      const layout = prepareLayout(db);
      checkLayout(db, layout, file);
      const sql = { ...layout, ...prepare(db) };
      const origin = loadOrCreateOrigin(sql, options.nodeName);
      const store = new SqliteStore(
        db,
        sql,
        options.nodeName,
        origin,
        loadVersionVector(sql),
        options.metrics,
      );
      const everyMs = options.checkpointEveryMs ?? DEFAULT_CHECKPOINT_MS;
      if (everyMs > 0) {
        db.exec("PRAGMA wal_autocheckpoint = 0");
        store.checkpointer = new Checkpointer({
          file,
          everyMs,
          onFailure: (error) => {
            if (db.open) db.exec("PRAGMA wal_autocheckpoint = 1000");
            options.onCheckpointFailure?.(error);
          },
        });
      }
      return store;
    } catch (error) {
      db.close();
      throw error;
    }
  }

  protected transaction<T>(fn: () => T): T {
    const sizeBefore = this.size;
    try {
      return this.db.transaction(() => {
        const result = fn();
        for (const [post, n] of this.countDeltas) this.sql.addCount.run(post, n);
        if (this.size !== sizeBefore) this.sql.saveSize.run(String(this.size));
        return result;
      })();
    } catch (error) {
      // Rolled back: forget what the transaction cached, ids included.
      this.size = sizeBefore;
      this.originIds.clear();
      this.postIds.clear();
      throw error;
    } finally {
      this.countDeltas.clear();
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
    this.sql.saveUpTo.run(upTo, this.idOf(origin));
  }

  protected async closeStorage(): Promise<void> {
    // The worker's connection first: the last one to close checkpoints the whole WAL.
    await this.checkpointer?.close();
    if (this.db.open) this.db.close();
  }

  entries(range: SeqRange, limit: number): Entry[] {
    const id =
      this.originIds.get(range.origin) ??
      (this.sql.originId.get(range.origin) as number | undefined);
    if (id === undefined) return [];
    // The bound keeps the rowid range inside this origin's.
    const upTo = Math.min(range.upTo, MAX_SEQ);
    const rows = this.sql.range.all(id, range.after, id, upTo, limit) as EntryRow[];
    return rows.map(([seq, post, user, ts, traceparent]) => {
      const base = { origin: range.origin, seq, post: post as PostId, user: user as UserId, ts };
      return traceparent === null ? base : { ...base, traceparent };
    });
  }

  count(post: PostId): number {
    return (this.sql.count.get(post) as number | undefined) ?? 0;
  }

  liked(post: PostId, user: UserId): boolean {
    return this.sql.liked.get(post, user) !== undefined;
  }

  users(post: PostId, after: UserId | undefined, limit: number): UserId[] {
    // Valid users are never empty, so '' sorts before every one of them.
    return this.sql.users.all(post, after ?? "", limit) as UserId[];
  }

  setSize(): number {
    return this.size;
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
      if (this.postIds.size >= POST_CACHE_SIZE) this.postIds.clear();
      this.postIds.set(post, id);
    }
    return id;
  }
}

type Statements = ReturnType<typeof prepareLayout> & ReturnType<typeof prepare>;

function prepareLayout(db: Database.Database) {
  return {
    schemaVersion: db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck(),
    otherTables: db
      .prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name <> 'meta'")
      .pluck(),
  };
}

/** Creates the tables in a new file; refuses a file written with another layout. */
function checkLayout(db: Database.Database, sql: ReturnType<typeof prepareLayout>, file: string) {
  const version = sql.schemaVersion.get() as string | undefined;
  if (version === SCHEMA_VERSION) return;
  const wipe =
    "Stop the node, move the data directory aside (or delete it) and start again: the node " +
    "starts as a new origin and refills from its peers.";
  if (version === undefined && (sql.otherTables.get() as number) === 0) {
    db.exec(SCHEMA);
    return;
  }
  const written =
    version === undefined ? "an older version of likes (schema 1)" : `schema ${version}`;
  throw new SchemaVersionError(
    `${file} was written by ${written}; this version reads schema ${SCHEMA_VERSION} only. ${wipe}`,
  );
}

function prepare(db: Database.Database) {
  return {
    insertEntry: db.prepare(
      "INSERT INTO entries (dot, post, user_id, ts, traceparent) VALUES ((? << 40) | ?, ?, ?, ?, ?)",
    ),
    insertLike: db.prepare("INSERT OR IGNORE INTO likes (post, user_id) VALUES (?, ?)"),
    addCount: db.prepare(
      "INSERT INTO counts (post, n) VALUES (?, ?) ON CONFLICT (post) DO UPDATE SET n = n + excluded.n",
    ),
    postId: db.prepare("SELECT id FROM posts WHERE post_id = ?").pluck(),
    addPost: db.prepare("INSERT INTO posts (post_id) VALUES (?)"),
    addOrigin: db.prepare("INSERT OR IGNORE INTO origins (origin) VALUES (?)"),
    originId: db.prepare("SELECT id FROM origins WHERE origin = ?").pluck(),
    saveUpTo: db.prepare("UPDATE origins SET upto = ? WHERE id = ?"),
    saveSize: db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('set_size', ?)"),
    metaValue: db.prepare("SELECT value FROM meta WHERE key = ?").pluck(),
    saveOrigin: db.prepare("INSERT INTO meta (key, value) VALUES ('origin', ?)"),
    origins: db.prepare("SELECT origin, upto FROM origins").raw(),
    // Per origin, a rowid range scan of what is held above its contiguous prefix.
    ahead: db
      .prepare(
        `SELECT o.origin, e.dot & ${MAX_SEQ} FROM origins o JOIN entries e
         ON e.dot > (o.id << 40) | o.upto AND e.dot <= (o.id << 40) | ${MAX_SEQ}`,
      )
      .raw(),
    range: db
      .prepare(
        `SELECT e.dot & ${MAX_SEQ}, p.post_id, e.user_id, e.ts, e.traceparent
         FROM entries e JOIN posts p ON p.id = e.post
         WHERE e.dot > (? << 40) | ? AND e.dot <= (? << 40) | ? ORDER BY e.dot LIMIT ?`,
      )
      .raw(),
    count: db
      .prepare("SELECT c.n FROM posts p JOIN counts c ON c.post = p.id WHERE p.post_id = ?")
      .pluck(),
    liked: db
      .prepare(
        "SELECT 1 FROM likes WHERE post = (SELECT id FROM posts WHERE post_id = ?) AND user_id = ?",
      )
      .pluck(),
    users: db
      .prepare(
        `SELECT user_id FROM likes WHERE post = (SELECT id FROM posts WHERE post_id = ?)
         AND user_id > ? ORDER BY user_id LIMIT ?`,
      )
      .pluck(),
  };
}

/** Close enough to the set view's UTF-8 order for locality; correctness does not depend on it. */
function compareUtf16(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function loadOrCreateOrigin(sql: Statements, nodeName: NodeName): OriginId {
  const stored = sql.metaValue.get("origin");
  if (typeof stored === "string") {
    if (!isOriginId(stored)) throw new Error(`corrupt origin id in the data directory: ${stored}`);
    return stored;
  }
  // A new data directory is a new incarnation: its seqs can never collide with older dots.
  const origin = originId(nodeName, randomIncarnation());
  sql.saveOrigin.run(origin);
  return origin;
}

function loadVersionVector(sql: Statements): VersionVector {
  const vv = VersionVector.from(new Map(sql.origins.all() as [OriginId, number][]));
  // Entries that arrived above a gap: few, and they must wait for it to fill.
  for (const [origin, seq] of sql.ahead.all() as [OriginId, number][]) vv.add({ origin, seq });
  return vv;
}
