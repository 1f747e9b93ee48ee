// What the tests read straight from a store's files (header bytes, the saved rows of contiguous
// seqs) without opening the store, and a file of the layout before this one.
import { closeSync, openSync, readSync } from "node:fs";
import Database from "better-sqlite3";
import { SEQ_BITS } from "../../src/crdt/index.js";

/** `length` bytes of a file from `offset` (a database's or a log's header). */
export function readBytes(file: string, offset: number, length: number): Buffer {
  const bytes = Buffer.alloc(length);
  const fd = openSync(file, "r");
  try {
    readSync(fd, bytes, 0, length, offset);
  } finally {
    closeSync(fd);
  }
  return bytes;
}

/** The page size a database file was made with (header bytes 16–17; 1 stands for 65536). */
export function pageSizeOf(file: string): number {
  const size = readBytes(file, 16, 2).readUInt16BE(0);
  return size === 1 ? 65536 : size;
}

/** Each origin's contiguous seq as the database file holds it (origins.upto), by origin id. */
export function savedSeqsOf(file: string): Map<string, number> {
  const db = new Database(file, { readonly: true });
  try {
    return new Map(
      db.prepare("SELECT origin, upto FROM origins").raw().all() as [string, number][],
    );
  } finally {
    db.close();
  }
}

/**
 * A database of schema 2, as its last version wrote it (counts in a table of their own): three
 * likes of origin `n2~abc`, seqs 1 to 3: `a` and `b` on post `p`, `a` on post `q`.
 */
export function writeSchema2(file: string): void {
  const dot = (seq: number) => 2 ** SEQ_BITS + seq;
  const db = new Database(file);
  try {
    db.exec(`
      PRAGMA journal_mode = WAL;
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE origins (id INTEGER PRIMARY KEY, origin TEXT NOT NULL UNIQUE,
        upto INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE posts (id INTEGER PRIMARY KEY, post_id TEXT NOT NULL UNIQUE);
      CREATE TABLE entries (dot INTEGER PRIMARY KEY, post INTEGER NOT NULL,
        user_id TEXT NOT NULL, ts INTEGER NOT NULL, traceparent TEXT);
      CREATE TABLE likes (post INTEGER NOT NULL, user_id TEXT NOT NULL,
        PRIMARY KEY (post, user_id)) WITHOUT ROWID;
      CREATE TABLE counts (post INTEGER PRIMARY KEY, n INTEGER NOT NULL);
      INSERT INTO meta VALUES ('schema_version', '2'), ('origin', 'n1~old'), ('set_size', '3');
      INSERT INTO origins VALUES (1, 'n2~abc', 3);
      INSERT INTO posts VALUES (1, 'p'), (2, 'q');
      INSERT INTO entries VALUES (${dot(1)}, 1, 'a', 1, NULL), (${dot(2)}, 2, 'a', 2, NULL),
        (${dot(3)}, 1, 'b', 3, NULL);
      INSERT INTO likes VALUES (1, 'a'), (2, 'a'), (1, 'b');
      INSERT INTO counts VALUES (1, 2), (2, 1);
    `);
  } finally {
    db.close();
  }
}
