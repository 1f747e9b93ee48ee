// Snapshots of a store, for an empty node's bootstrap (README, "Snapshot bootstrap"): the
// serving side's consistent copy of its database, read in chunks and checked (checksum and
// SQLite's quick_check) by a child process while it is read, and the joining side's download,
// checked (length, that checksum, layout) before one rename installs it. Nothing half-written
// is ever at the database's path: a download lives under another name until it is complete and
// checked, and a start removes whatever a killed one left.
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { open, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { Digest } from "../crdt/index.js";
import { SNAPSHOT_CHECKSUM, checkCopy, type CopyCheck, type CopyVerdict } from "./copy-check.js";
import { DB_FILE } from "./data-dir.js";
import { repage, syncPath, type RepageOutcome } from "./repage.js";
import { SCHEMA_VERSION, loadVersionVector, prepare, prepareLayout } from "./sqlite-schema.js";

/** Where a download is written until it is installed (and its journal's name prefix). */
export const DOWNLOAD_FILE = `${DB_FILE}.snapshot`;
/** The prefix of a served copy's name. */
const SERVED_PREFIX = "snapshot-out-";
/** A snapshot larger than this is refused before a byte is written: no likes cluster is near it. */
export const MAX_SNAPSHOT_BYTES = 1024 ** 4;

// Statements of the short-lived connections below are kept referenced for the process's life:
// on Node 24 a better-sqlite3 Statement collected by the GC at the wrong moment aborts the
// process (sqlite.ts). A few per snapshot.
const kept: unknown[] = [];

/** A snapshot that failed its checks: refused, nothing installed. */
export class SnapshotRefusedError extends Error {
  override readonly name = "SnapshotRefusedError";
}

/** Removes what a killed download or a served copy left in a data directory. */
export function removeStaleSnapshots(dataDir: string): string[] {
  const stale = readdirSync(dataDir).filter(
    (name) => name.startsWith(DOWNLOAD_FILE) || name.startsWith(SERVED_PREFIX),
  );
  // Recursive: whatever stands under one of these names is this code's leftover.
  for (const name of stale) rmSync(join(dataDir, name), { force: true, recursive: true });
  return stale;
}

/** A consistent copy of a store, served in chunks until removed. */
export class StoreSnapshot {
  private removed = false;

  private constructor(
    readonly path: string,
    private readonly file: FileHandle,
    readonly bytes: number,
    readonly vv: Digest,
    readonly entryCount: number,
    private readonly check: CopyCheck,
  ) {}

  /** The copy's checksum and quick_check, from a child process begun when it was made. */
  get verdict(): Promise<CopyVerdict> {
    return this.check.verdict;
  }

  /**
   * Completes a copy that `backup` wrote at a fresh path in `dataDir`: a rollback-journal file
   * without the origin id of the node that made it (a snapshot carries likes, not an identity).
   */
  static async make(
    dataDir: string,
    backup: (path: string) => Promise<void>,
  ): Promise<StoreSnapshot> {
    const path = join(dataDir, `${SERVED_PREFIX}${randomBytes(6).toString("hex")}.db`);
    try {
      await backup(path);
      const { vv, entryCount } = strip(path);
      const { size } = await stat(path);
      const file = await open(path, "r");
      return new StoreSnapshot(path, file, size, vv, entryCount, checkCopy(path));
    } catch (error) {
      await rm(path, { force: true });
      await rm(`${path}-journal`, { force: true });
      throw error;
    }
  }

  /** Up to `length` bytes from `offset` (fewer only at the end of the file). */
  async read(offset: number, length: number): Promise<Buffer> {
    const n = Math.max(0, Math.min(length, this.bytes - offset));
    const buffer = Buffer.allocUnsafe(n);
    let done = 0;
    while (done < n) {
      const { bytesRead } = await this.file.read(buffer, done, n - done, offset + done);
      if (bytesRead === 0) throw new Error(`${this.path} ended at ${offset + done} bytes`);
      done += bytesRead;
    }
    return buffer;
  }

  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    this.check.cancel();
    await this.file.close();
    await rm(this.path, { force: true });
  }
}

/** Makes a copy a snapshot: rollback journal, no origin id; returns what it holds. */
function strip(path: string): { vv: Digest; entryCount: number } {
  const db = new Database(path);
  try {
    db.exec("PRAGMA journal_mode = DELETE");
    // Not synced: a copy made to be served, removed at the next start if this node dies.
    db.exec("PRAGMA synchronous = OFF");
    db.exec("DELETE FROM meta WHERE key = 'origin'");
    const sql = prepare(db);
    kept.push(sql);
    const vv = loadVersionVector(sql).digest();
    let entryCount = 0;
    for (const seq of vv.values()) entryCount += seq;
    return { vv, entryCount };
  } finally {
    db.close();
  }
}

/**
 * What an install did besides checking and renaming: a snapshot in pages of another size is
 * rewritten in this node's (`repaged`), or installed as it is if that failed (`kept`).
 */
export type InstallReport = RepageOutcome;

/** What the serving peer said of its snapshot, checked against what arrives. */
export interface SnapshotPromise {
  readonly bytes: number;
}

/**
 * A snapshot being downloaded into a data directory that holds no database: written in order,
 * hashed as it goes, then checked and installed by `install`, or removed by `abort`.
 */
export class SnapshotDownload {
  private written = 0;
  private readonly hash = createHash(SNAPSHOT_CHECKSUM);
  private closed = false;

  private constructor(
    private readonly dataDir: string,
    private readonly file: FileHandle,
    private readonly promised: SnapshotPromise,
  ) {}

  static async start(dataDir: string, promised: SnapshotPromise): Promise<SnapshotDownload> {
    if (!Number.isSafeInteger(promised.bytes) || promised.bytes <= 0)
      throw new SnapshotRefusedError(`a snapshot of ${promised.bytes} bytes`);
    if (promised.bytes > MAX_SNAPSHOT_BYTES)
      throw new SnapshotRefusedError(
        `a snapshot of ${promised.bytes} bytes is past the limit of ${MAX_SNAPSHOT_BYTES}`,
      );
    if (existsSync(join(dataDir, DB_FILE)))
      throw new Error(`${dataDir} holds a database: a snapshot is installed in an empty one only`);
    removeStaleSnapshots(dataDir);
    const file = await open(join(dataDir, DOWNLOAD_FILE), "wx");
    return new SnapshotDownload(dataDir, file, promised);
  }

  get bytesWritten(): number {
    return this.written;
  }

  /** Appends the bytes at `offset`, which must be where the previous ones ended. */
  async write(offset: number, data: Buffer): Promise<void> {
    if (offset !== this.written)
      throw new SnapshotRefusedError(`a chunk at ${offset}, expected one at ${this.written}`);
    if (offset + data.length > this.promised.bytes)
      throw new SnapshotRefusedError(
        `a chunk past the snapshot's ${this.promised.bytes} bytes (to ${offset + data.length})`,
      );
    this.hash.update(data);
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.file.write(data, done, data.length - done, offset + done);
      done += bytesWritten;
    }
    this.written += data.length;
  }

  /**
   * Checks the whole file and installs it as the data directory's database: its length as
   * promised, its checksum as the serving node computed it on its copy (whose quick_check it
   * ran: the same bytes), this code's layout; rewrites it in this node's page size if it has
   * another; then fsync and one rename. Refused (SnapshotRefusedError), it is removed and
   * nothing is installed.
   */
  async install(checksum: Buffer): Promise<InstallReport> {
    try {
      if (this.written !== this.promised.bytes)
        throw new SnapshotRefusedError(
          `truncated: ${this.written} of ${this.promised.bytes} bytes`,
        );
      const digest = this.hash.digest();
      if (!digest.equals(checksum))
        throw new SnapshotRefusedError(
          `checksum mismatch: ${SNAPSHOT_CHECKSUM} ${digest.toString("hex")}, the peer's ${checksum.toString("hex")}`,
        );
      await this.close();
      const path = join(this.dataDir, DOWNLOAD_FILE);
      check(path);
      const report = await repage(path);
      // A rewritten file was synced by repage: the download as it came is synced only if kept.
      if (!("repaged" in report)) await syncPath(path);
      // Left by no start that reached here, but a WAL beside the new file would be applied to it.
      for (const suffix of ["-wal", "-shm", "-journal"])
        await rm(join(this.dataDir, `${DB_FILE}${suffix}`), { force: true });
      await rename(path, join(this.dataDir, DB_FILE));
      // A rename is durable once the directory that holds it is synced.
      await syncPath(this.dataDir);
      return report;
    } catch (error) {
      await this.abort();
      throw error;
    }
  }

  /** Removes the download and anything SQLite made beside it. */
  async abort(): Promise<void> {
    await this.close();
    removeStaleSnapshots(this.dataDir);
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.file.close();
  }
}

/**
 * Refuses a file that is not a likes database of this layout; drops any origin id. Its pages
 * were checked on the serving node (the checksum ties them to these bytes).
 */
function check(path: string): void {
  let db: Database.Database;
  try {
    db = new Database(path, { fileMustExist: true });
  } catch (error) {
    throw new SnapshotRefusedError(`not a database: ${String(error)}`);
  }
  try {
    const layout = prepareLayout(db);
    kept.push(layout);
    const version = layout.schemaVersion.get() as string | undefined;
    if (version !== SCHEMA_VERSION)
      throw new SnapshotRefusedError(
        `layout ${version ?? "none"}, this node reads ${SCHEMA_VERSION}`,
      );
    // Its likes are this node's now; its identity is not (a start takes a new origin anyway).
    db.exec("PRAGMA journal_mode = DELETE");
    // Not synced here: install syncs the file it keeps, and a rewrite replaces this one.
    db.exec("PRAGMA synchronous = OFF");
    db.exec("DELETE FROM meta WHERE key = 'origin'");
  } catch (error) {
    if (error instanceof SnapshotRefusedError) throw error;
    throw new SnapshotRefusedError(`unreadable: ${String(error)}`);
  } finally {
    db.close();
  }
}
