// Opening a data directory's database for the SQLite store: the directory held, the file's
// settings, its checks (integrity, layout), a new incarnation, and the checkpoint worker. A
// failed open leaves behind nothing it created, and says what went wrong in the store's terms.
import { existsSync } from "node:fs";
import Database from "better-sqlite3";
import type { OriginId, VersionVector } from "../crdt/index.js";
import { Checkpointer } from "./checkpointer.js";
import { DataDirectory, describe, isCorrupt, isFull } from "./data-dir.js";
import type { SqliteStoreOptions } from "./sqlite-options.js";
import {
  META,
  PAGE_SIZE,
  checkIntegrity,
  checkLayout,
  loadVersionVector,
  prepare,
  prepareLayout,
  startIncarnation,
  type OriginRow,
  type Statements,
} from "./sqlite-schema.js";
import { removeStaleSnapshots } from "./snapshot.js";
import { StorageHealth } from "./storage-health.js";
import { DataDirectoryError, StorageFullError, StoreCorruptError } from "./types.js";

const DEFAULT_CHECKPOINT_MS = 500;
/**
 * The log's size past which a background checkpoint starts it over (checkpointer.ts): at
 * 1000 likes/s a receiving peer writes about 24 MB of log a second.
 */
const DEFAULT_WAL_RESTART_BYTES = 32 * 2 ** 20;

/** An open, checked database, and what the store is made of. */
export interface OpenDatabase {
  readonly db: Database.Database;
  readonly sql: Statements;
  readonly dir: DataDirectory;
  readonly health: StorageHealth;
  /** This start's origin, and the one the directory was last opened with, if any. */
  readonly origin: OriginId;
  readonly previousOrigin: OriginId | undefined;
  readonly vv: VersionVector;
  /** The origins' rows the vector was read from (ContiguousSaves starts from their seqs). */
  readonly origins: readonly OriginRow[];
}

/**
 * Opens the database in its data directory, which it holds exclusively from then on, and makes
 * the store of it with `build`. With `onCorruption: "refill"`, a corrupt one is moved aside and
 * a new one made.
 */
export function openDatabase<T>(
  options: SqliteStoreOptions,
  build: (opened: OpenDatabase) => T,
): T {
  const dir = options.directory ?? DataDirectory.open(options.dataDir);
  try {
    // What a killed snapshot download or a served copy left: never a database.
    removeStaleSnapshots(dir.path);
    try {
      return openIn(dir, options, build);
    } catch (error) {
      if (!(error instanceof StoreCorruptError) || options.onCorruption !== "refill") throw error;
      options.onMovedAside?.(dir.moveAside(new Date()), error.message);
      return openIn(dir, options, build);
    }
  } catch (error) {
    dir.abandon();
    if (isFull(error)) throw new StorageFullError(options.dataDir, describe(error));
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code === "string" && /^(SQLITE_(CANTOPEN|READONLY|IOERR|PERM)|E[A-Z]+$)/.test(code))
      throw new DataDirectoryError(options.dataDir, describe(error, options.dataDir));
    throw error;
  }
}

function openIn<T>(
  dir: DataDirectory,
  options: SqliteStoreOptions,
  build: (opened: OpenDatabase) => T,
): T {
  const file = dir.dbFile;
  const isNew = !existsSync(file);
  if (dir.markedCorrupt) throw new StoreCorruptError(dir.path, "found corrupt while running");
  // Every page of the file, read once (a few seconds at millions of likes, README), on a
  // connection that cannot write: a file refused is left as it was found. Closing a writing
  // connection checkpoints the log into the file and deletes the log, the newest likes with it.
  if (!isNew && options.integrityChecked !== true) checkReadOnly(file, dir.path);
  const db = new Database(file);
  try {
    // exec, not pragma(): pragma() prepares a throwaway Statement (see sqlite.ts).
    // The page size applies to a new file only, so it comes before anything is written.
    // 4 KiB: a commit writes every page it dirties to the WAL, and one of a few likes from a
    // peer dirties about ten (each like's set page and count page, the entry page). With 16 KiB
    // pages such a commit wrote 190 KB of log and cost 40% more time than with 4 KiB; a bulk
    // apply of thousands of likes gains from the larger page, but a node spends its life on
    // small commits. A file keeps the page size it was made with.
    db.exec(`PRAGMA page_size = ${PAGE_SIZE}`);
    db.exec("PRAGMA journal_mode = WAL");
    db.exec(`PRAGMA synchronous = ${options.fsync === "always" ? "FULL" : "NORMAL"}`);
    db.exec("PRAGMA foreign_keys = OFF");
    db.exec(META);
    const layout = prepareLayout(db);
    checkLayout(db, layout, file);
    const sql = { ...layout, ...prepare(db) };
    const { origin, previous } = startIncarnation(sql, options.nodeName);
    const health = new StorageHealth(dir, options.onCondition);
    const origins = sql.origins.all() as OriginRow[];
    const vv = loadVersionVector(sql, origins);
    return build({ db, sql, dir, health, origin, previousOrigin: previous, vv, origins });
  } catch (error) {
    db.close();
    throw corruptOr(error, dir.path);
  }
}

/** SQLite's word that the file is damaged, as the store's error; any other error as it is. */
function corruptOr(error: unknown, dataDir: string): unknown {
  return isCorrupt(error) ? new StoreCorruptError(dataDir, describe(error)) : error;
}

/** SQLite's quick check of a file, on a read-only connection; StoreCorruptError if it fails. */
function checkReadOnly(file: string, dataDir: string): void {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    checkIntegrity(db, dataDir);
  } catch (error) {
    throw corruptOr(error, dataDir);
  } finally {
    db?.close();
  }
}

/**
 * The worker that checkpoints the WAL off the event loop (checkpointer.ts), unless
 * `checkpointEveryMs` is 0: then SQLite checkpoints in commits, every 1000 pages.
 */
export function startCheckpointer(
  { db, dir, health }: OpenDatabase,
  options: SqliteStoreOptions,
): Checkpointer | undefined {
  const everyMs = options.checkpointEveryMs ?? DEFAULT_CHECKPOINT_MS;
  if (everyMs <= 0) return undefined;
  db.exec("PRAGMA wal_autocheckpoint = 0");
  // No journal_size_limit: cutting the file back when the log starts over made the next
  // commits extend it again (POST p99 38 ms against 6 without, one node under wrk).
  return new Checkpointer({
    file: dir.dbFile,
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
