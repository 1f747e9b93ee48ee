// The SQLite layout of a data directory: the tables, the statements the store runs, and how a
// store's identity and version vector are read back at open.
import type Database from "better-sqlite3";
import {
  MAX_SEQ,
  SEQ_BITS,
  VersionVector,
  isOriginId,
  originId,
  type NodeName,
  type OriginId,
} from "../crdt/index.js";
import { randomIncarnation } from "./incarnation.js";
import { StoreCorruptError } from "./types.js";

/** The layout this code reads and writes; a data directory with any other is refused. */
export const SCHEMA_VERSION = "2";
/**
 * The page size of the files a node makes (sqlite-open.ts says why) and of the snapshots it
 * installs; a file made with another keeps it.
 */
export const PAGE_SIZE = 4096;

export const META = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
`;

// Rows are kept small because they are most of the disk: a post is stored once and referred to
// by its integer id, and an entry's rowid is its dot (origin index << SEQ_BITS | seq), so the entries
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

export type Statements = ReturnType<typeof prepareLayout> & ReturnType<typeof prepare>;

export function prepareLayout(db: Database.Database) {
  return {
    schemaVersion: db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck(),
    otherTables: db
      .prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name <> 'meta'")
      .pluck(),
  };
}

/** Refuses a file whose pages or b-trees are damaged (quick_check: no index-to-table check). */
export function checkIntegrity(db: Database.Database, dataDir: string): void {
  // At most 10 problems: the first one is enough to refuse the file.
  const problems = db.prepare("PRAGMA quick_check(10)").pluck().all() as string[];
  if (problems.length !== 1 || problems[0] !== "ok")
    throw new StoreCorruptError(dataDir, `integrity check: ${problems.join("; ")}`);
}

/** Creates the tables in a new file; refuses a file written with another layout. */
export function checkLayout(
  db: Database.Database,
  sql: ReturnType<typeof prepareLayout>,
  file: string,
) {
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

export function prepare(db: Database.Database) {
  return {
    insertEntry: db.prepare(
      `INSERT INTO entries (dot, post, user_id, ts, traceparent) VALUES ((? << ${SEQ_BITS}) | ?, ?, ?, ?, ?)`,
    ),
    insertLike: db.prepare("INSERT OR IGNORE INTO likes (post, user_id) VALUES (?, ?)"),
    addCount: db.prepare(
      "INSERT INTO counts (post, n) VALUES (?, ?) ON CONFLICT (post) DO UPDATE SET n = n + excluded.n",
    ),
    postId: db.prepare("SELECT id FROM posts WHERE post_id = ?").pluck(),
    countOf: db.prepare("SELECT n FROM counts WHERE post = ?").pluck(),
    addPost: db.prepare("INSERT INTO posts (post_id) VALUES (?)"),
    addOrigin: db.prepare("INSERT OR IGNORE INTO origins (origin) VALUES (?)"),
    originId: db.prepare("SELECT id FROM origins WHERE origin = ?").pluck(),
    saveUpTo: db.prepare("UPDATE origins SET upto = ? WHERE id = ?"),
    // The set's size is counted at open, not written by every commit. An earlier version wrote
    // it to meta as set_size with every commit and read it at open: this one writes it at a
    // clean close, for such a node opened on the directory after it.
    setSize: db.prepare("SELECT total(n) FROM counts").pluck(),
    saveSize: db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('set_size', ?)"),
    // The small write that tells whether a full disk has room again.
    probe: db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('probed_at', ?)"),
    metaValue: db.prepare("SELECT value FROM meta WHERE key = ?").pluck(),
    saveOrigin: db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('origin', ?)"),
    // Each origin, its saved contiguous seq, and its id (the version vector at open, and what
    // ContiguousSaves knows is saved).
    origins: db.prepare("SELECT origin, upto, id FROM origins").raw(),
    // Per origin, a rowid range scan of what is held above its saved contiguous seq.
    ahead: db
      .prepare(
        `SELECT o.origin, e.dot & ${MAX_SEQ} FROM origins o JOIN entries e
         ON e.dot > (o.id << ${SEQ_BITS}) | o.upto AND e.dot <= (o.id << ${SEQ_BITS}) | ${MAX_SEQ}`,
      )
      .raw(),
    range: db
      .prepare(
        `SELECT e.dot & ${MAX_SEQ}, p.post_id, e.user_id, e.ts, e.traceparent
         FROM entries e JOIN posts p ON p.id = e.post
         WHERE e.dot > (? << ${SEQ_BITS}) | ? AND e.dot <= (? << ${SEQ_BITS}) | ? ORDER BY e.dot LIMIT ?`,
      )
      .raw(),
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

/**
 * Every start is a new incarnation, so that no dot is ever made twice: a data directory that
 * was copied, restored from a backup or cloned cannot prove that peers do not already hold
 * later seqs of its stored origin with other likes (README, "Data directories"). What the
 * directory holds stays valid; only new likes take the new origin. Returns the origin the
 * directory was last opened with, if any.
 */
export function startIncarnation(
  sql: Statements,
  nodeName: NodeName,
): { origin: OriginId; previous: OriginId | undefined } {
  const stored = sql.metaValue.get("origin");
  const previous = typeof stored === "string" && isOriginId(stored) ? stored : undefined;
  const origin = originId(nodeName, randomIncarnation());
  sql.saveOrigin.run(origin);
  return { origin, previous };
}

/** An origin's row: the origin, its saved contiguous seq, its number in the entries' dots. */
export type OriginRow = [origin: OriginId, upTo: number, id: number];

/** The version vector the store holds: the origins' rows (read here unless given), then the rest. */
export function loadVersionVector(
  sql: Pick<Statements, "origins" | "ahead">,
  rows = sql.origins.all() as OriginRow[],
): VersionVector {
  const vv = VersionVector.from(new Map(rows.map(([origin, upTo]) => [origin, upTo])));
  // Entries committed since the saved seq (fewer than SAVE_EVERY, contiguous-saves.ts), and
  // those that arrived above a gap (few, and they wait for it to fill): taken in rowid order.
  for (const [origin, seq] of sql.ahead.all() as [OriginId, number][]) vv.add({ origin, seq });
  return vv;
}
