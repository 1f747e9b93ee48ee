import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import {
  VersionVector,
  isOriginId,
  originId,
  type Entry,
  type NodeName,
  type OriginId,
  type PostId,
  type SeqRange,
  type UserId,
} from "../crdt/index.js";
import { randomIncarnation } from "./incarnation.js";
import { LogStore } from "./log-store.js";

export interface SqliteStoreOptions {
  readonly dataDir: string;
  readonly nodeName: NodeName;
  /** `always`: synchronous=FULL, a commit survives power loss; `normal`: it survives kill -9. */
  readonly fsync: "normal" | "always";
  /** Told the duration of every group commit, in seconds. */
  readonly onCommit?: (seconds: number) => void;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS origins (
  id INTEGER PRIMARY KEY,
  origin TEXT NOT NULL UNIQUE,
  upto INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS entries (
  origin INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  post_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  ts INTEGER NOT NULL,
  traceparent TEXT,
  PRIMARY KEY (origin, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS likes (
  post_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  PRIMARY KEY (post_id, user_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counts (post_id TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
`;

type EntryRow = [seq: number, post: string, user: string, ts: number, traceparent: string | null];

/** The production Store: one SQLite file per node, WAL mode, group-committed writes. */
export class SqliteStore extends LogStore {
  private readonly originIds = new Map<OriginId, number>();
  /** New likes per post in the running transaction: one count update per post, not per like. */
  private readonly countDeltas = new Map<PostId, number>();
  private size: number;

  private constructor(
    private readonly db: Database.Database,
    // Held for the store's life: on Node 24 a better-sqlite3 Statement collected by the GC at
    // the wrong moment aborts the process (node::ObjectWrap cleanup-hook assertion).
    private readonly sql: Statements,
    nodeName: NodeName,
    origin: OriginId,
    vv: VersionVector,
    onCommit: ((seconds: number) => void) | undefined,
  ) {
    super(nodeName, origin, vv, undefined, onCommit);
    this.size = Number((sql.metaValue.get("set_size") as string | undefined) ?? 0);
  }

  static open(options: SqliteStoreOptions): SqliteStore {
    mkdirSync(options.dataDir, { recursive: true });
    const db = new Database(join(options.dataDir, "likes.db"));
    try {
      // exec, not pragma(): pragma() prepares a throwaway Statement (see the constructor).
      db.exec("PRAGMA journal_mode = WAL");
      db.exec(`PRAGMA synchronous = ${options.fsync === "always" ? "FULL" : "NORMAL"}`);
      db.exec("PRAGMA foreign_keys = OFF");
      db.exec(SCHEMA);
      const sql = prepare(db);
      const origin = loadOrCreateOrigin(sql, options.nodeName);
      return new SqliteStore(
        db,
        sql,
        options.nodeName,
        origin,
        loadVersionVector(sql),
        options.onCommit,
      );
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
      // Rolled back: forget what the transaction cached.
      this.size = sizeBefore;
      this.originIds.clear();
      throw error;
    } finally {
      this.countDeltas.clear();
    }
  }

  protected insertEntry(e: Entry): void {
    this.sql.insertEntry.run(
      this.idOf(e.origin),
      e.seq,
      e.post,
      e.user,
      e.ts,
      e.traceparent ?? null,
    );
  }

  protected insertLike(post: PostId, user: UserId): boolean {
    if (this.sql.insertLike.run(post, user).changes === 0) return false;
    this.countDeltas.set(post, (this.countDeltas.get(post) ?? 0) + 1);
    this.size++;
    return true;
  }

  protected saveContiguous(origin: OriginId, upTo: number): void {
    this.sql.saveUpTo.run(upTo, this.idOf(origin));
  }

  protected closeStorage(): void {
    if (this.db.open) this.db.close();
  }

  entries(range: SeqRange, limit: number): Entry[] {
    const id =
      this.originIds.get(range.origin) ??
      (this.sql.originId.get(range.origin) as number | undefined);
    if (id === undefined) return [];
    const rows = this.sql.range.all(id, range.after, range.upTo, limit) as EntryRow[];
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
}

type Statements = ReturnType<typeof prepare>;

function prepare(db: Database.Database) {
  return {
    insertEntry: db.prepare(
      "INSERT INTO entries (origin, seq, post_id, user_id, ts, traceparent) VALUES (?, ?, ?, ?, ?, ?)",
    ),
    insertLike: db.prepare("INSERT OR IGNORE INTO likes (post_id, user_id) VALUES (?, ?)"),
    addCount: db.prepare(
      "INSERT INTO counts (post_id, n) VALUES (?, ?) ON CONFLICT (post_id) DO UPDATE SET n = n + excluded.n",
    ),
    addOrigin: db.prepare("INSERT OR IGNORE INTO origins (origin) VALUES (?)"),
    originId: db.prepare("SELECT id FROM origins WHERE origin = ?").pluck(),
    saveUpTo: db.prepare("UPDATE origins SET upto = ? WHERE id = ?"),
    saveSize: db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('set_size', ?)"),
    metaValue: db.prepare("SELECT value FROM meta WHERE key = ?").pluck(),
    saveOrigin: db.prepare("INSERT INTO meta (key, value) VALUES ('origin', ?)"),
    origins: db.prepare("SELECT origin, upto FROM origins").raw(),
    ahead: db
      .prepare(
        "SELECT o.origin, e.seq FROM entries e JOIN origins o ON o.id = e.origin WHERE e.seq > o.upto",
      )
      .raw(),
    range: db
      .prepare(
        "SELECT seq, post_id, user_id, ts, traceparent FROM entries WHERE origin = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
      )
      .raw(),
    count: db.prepare("SELECT n FROM counts WHERE post_id = ?").pluck(),
    liked: db.prepare("SELECT 1 FROM likes WHERE post_id = ? AND user_id = ?").pluck(),
    users: db
      .prepare(
        "SELECT user_id FROM likes WHERE post_id = ? AND user_id > ? ORDER BY user_id LIMIT ?",
      )
      .pluck(),
  };
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
