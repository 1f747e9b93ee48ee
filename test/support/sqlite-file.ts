// What the tests read straight from a store's files: header bytes, and the saved rows of
// contiguous seqs, without opening the store.
import { closeSync, openSync, readSync } from "node:fs";
import Database from "better-sqlite3";

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
