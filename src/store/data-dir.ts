// What a node does with its data directory besides the database: the exclusive lock, cleaning
// up after a failed start, moving a corrupt database aside, and naming why the disk failed.
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { SCHEMA_VERSION } from "./sqlite-schema.js";
import { DataDirectoryError, DataDirectoryLockedError } from "./types.js";

export const DB_FILE = "likes.db";
const LOCK_FILE = "likes.lock";
/** Written when the store found corruption at run time: the next start treats the file as corrupt. */
const CORRUPT_MARK = "likes.corrupt";
/** What SQLite keeps beside the database in WAL mode. */
const WAL_FILE = `${DB_FILE}-wal`;
const WAL_FILES = [WAL_FILE, `${DB_FILE}-shm`];
const DB_FILES = [DB_FILE, ...WAL_FILES, CORRUPT_MARK];

/** SQLite's and the OS's ways of saying the disk is full; EFBIG is a file size limit. */
export function isFull(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "SQLITE_FULL" || code === "ENOSPC" || code === "EFBIG" || code === "EDQUOT";
}

export function isCorrupt(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "SQLITE_CORRUPT" || code === "SQLITE_NOTADB";
}

/**
 * The data directory, held exclusively by this process. The lock is SQLite's own POSIX lock on
 * an empty file, taken by an open EXCLUSIVE transaction: the kernel drops it when the process
 * dies however it dies, so a kill -9 leaves no stale lock, and it does not touch likes.db, which
 * the checkpointer's second connection must still be able to open.
 */
export class DataDirectory {
  private constructor(
    readonly path: string,
    private readonly lock: Database.Database,
    /** What this start created, removed again if the start fails. */
    private readonly created: { dir: string | undefined; lock: boolean; db: boolean },
  ) {}

  static open(path: string): DataDirectory {
    let dir: string | undefined;
    try {
      dir = mkdirSync(path, { recursive: true });
      accessSync(path, constants.W_OK);
    } catch (error) {
      throw new DataDirectoryError(path, describe(error));
    }
    const lockFile = join(path, LOCK_FILE);
    const lockExisted = existsSync(lockFile);
    let lock: Database.Database | undefined;
    try {
      lock = new Database(lockFile, { timeout: 0 });
      // No journal: holding the lock then writes nothing, even on a full disk.
      lock.exec("PRAGMA journal_mode = OFF");
      lock.exec("BEGIN EXCLUSIVE");
    } catch (error) {
      lock?.close();
      const busy = (error as { code?: unknown }).code === "SQLITE_BUSY";
      if (!busy && !lockExisted) rmSync(lockFile, { force: true });
      if (!busy && dir !== undefined) rmSync(dir, { recursive: true, force: true });
      throw busy
        ? new DataDirectoryLockedError(path)
        : new DataDirectoryError(path, describe(error, path));
    }
    return new DataDirectory(path, lock, {
      dir,
      lock: !lockExisted,
      db: !existsSync(join(path, DB_FILE)),
    });
  }

  get dbFile(): string {
    return join(this.path, DB_FILE);
  }

  /** The database's write-ahead log, beside it while a node runs. */
  get walFile(): string {
    return join(this.path, WAL_FILE);
  }

  /** Whether the directory holds no database: a new node's (a snapshot may be installed in it). */
  get isEmpty(): boolean {
    return !existsSync(this.dbFile);
  }

  /**
   * Whether the database holds no like at all: no tables yet, or this version's layout with no
   * entry and no like (a node that started and never took or received one). A file marked
   * corrupt, of another layout, or that SQLite cannot read is not "nothing": the store's open
   * decides about it. Only while no store has the file open.
   */
  holdsNoLikes(): boolean {
    if (this.isEmpty) return true;
    if (this.markedCorrupt) return false;
    let db: Database.Database | undefined;
    try {
      // Read-only: closing a writing connection would checkpoint the log into the file and
      // delete the log, and a file the store's open then refuses would not be as it was found.
      db = new Database(this.dbFile, { fileMustExist: true, readonly: true });
      const tables = db.prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'table'");
      if (tables.pluck().get() === 0) return true;
      const version = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'");
      if (version.pluck().get() !== SCHEMA_VERSION) return false;
      const any = db.prepare(
        "SELECT EXISTS (SELECT 1 FROM entries) OR EXISTS (SELECT 1 FROM likes)",
      );
      return any.pluck().get() === 0;
    } catch {
      return false;
    } finally {
      db?.close();
    }
  }

  /**
   * Removes a database that holds no likes (holdsNoLikes), leaving the directory as a new
   * node's: its WAL and shared memory first, so that a kill on the way leaves the database
   * without them (whole, or as empty as it was), never a WAL beside a file it does not belong to.
   */
  discardDatabase(): void {
    for (const name of [...WAL_FILES, DB_FILE]) rmSync(join(this.path, name), { force: true });
  }

  /** Whether the store found corruption at run time in an earlier life of this directory. */
  get markedCorrupt(): boolean {
    return existsSync(join(this.path, CORRUPT_MARK));
  }

  /** Best effort: the disk may be failing too. */
  markCorrupt(): void {
    try {
      writeFileSync(join(this.path, CORRUPT_MARK), `${new Date().toISOString()}\n`);
    } catch {
      // The next start's integrity check looks at the file anyway.
    }
  }

  /**
   * Moves the database aside into `corrupt-<time>/` in the same directory (a rename: the
   * directory may be a mount point that cannot itself be moved). Returns where it went.
   */
  moveAside(now: Date): string {
    const aside = join(this.path, `corrupt-${now.toISOString().replace(/[:.]/g, "-")}`);
    mkdirSync(aside);
    for (const name of DB_FILES)
      if (existsSync(join(this.path, name))) renameSync(join(this.path, name), join(aside, name));
    return aside;
  }

  /** Releases the lock. The lock file stays: removing it could let two processes lock two files. */
  release(): void {
    if (this.lock.open) this.lock.close();
  }

  /** After a failed start: removes what this start created, so that nothing is left behind. */
  abandon(): void {
    this.release();
    if (this.created.db)
      for (const name of DB_FILES) rmSync(join(this.path, name), { force: true });
    if (this.created.lock && this.created.db) rmSync(join(this.path, LOCK_FILE), { force: true });
    if (this.created.dir !== undefined) rmSync(this.created.dir, { recursive: true, force: true });
  }
}

/** Why a file system call failed, in words an operator can act on. */
export function describe(error: unknown, path?: string): string {
  const code = (error as { code?: unknown } | null)?.code;
  // An Error's message, or the one the checkpoint worker posts with its code.
  const posted = (error as { message?: unknown } | null)?.message;
  const message = typeof posted === "string" ? posted : String(error);
  if (code === "SQLITE_CANTOPEN" && path !== undefined) {
    // SQLite says only "unable to open database file"; the file system knows why.
    try {
      accessSync(path, constants.W_OK);
    } catch (cause) {
      return describe(cause);
    }
  }
  return typeof code === "string" ? `${message} (${code})` : message;
}
