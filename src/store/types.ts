// The Store port every store implements, and the errors a store reports.
import type {
  Digest,
  Entry,
  Like,
  NodeName,
  OriginId,
  PostId,
  SeqRange,
  UserId,
} from "../crdt/index.js";

export interface AcceptResult {
  /** False when the like was already in the set: no new dot was made. */
  readonly isNew: boolean;
  /** The entry made for a new like. */
  readonly entry?: Entry;
}

export interface ApplyResult {
  /** The entries whose dots were new here, in the order given. */
  readonly stored: readonly Entry[];
  /** How many of them added a like to the set (a like can carry two dots). */
  readonly newLikes: number;
}

/**
 * Where a node keeps its likes. Writes are group-committed: when a write's promise resolves,
 * the write is durable. Reads see committed state only.
 */
export interface Store {
  readonly nodeName: NodeName;
  readonly origin: OriginId;
  /** Accepts a like first-hand: a new like gets the next dot of this node's origin. */
  accept(like: Like, ts: number, traceparent?: string): Promise<AcceptResult>;
  /**
   * Stores entries from peers, keeping their dots; entries already held are skipped. With
   * `inOrder`, entries of that origin above a gap in what is held wait (are not stored): a
   * sender's own pushes, which it sends again (merge.ts, withoutGapsOf).
   */
  apply(entries: readonly Entry[], inOrder?: OriginId): Promise<ApplyResult>;
  /** Committed version vector: per origin, the highest seq below which nothing is missing. */
  digest(): Digest;
  /** Entries of one origin in `range` (ascending seq), at most `limit`. */
  entries(range: SeqRange, limit: number): Entry[];
  count(post: PostId): number;
  liked(post: PostId, user: UserId): boolean;
  /** Users of a post in UTF-8 byte order, strictly after `after`, at most `limit`. */
  users(post: PostId, after: UserId | undefined, limit: number): UserId[];
  /** Number of distinct likes held. */
  setSize(): number;
  /** Bytes of the write-ahead log's file, for a store that has one. */
  walBytes?(): number;
  /** The log's restarts by the checkpoint worker, for a store that has one. */
  walRestarts?(): WalRestarts | undefined;
  /** Commits what is queued, then closes; later calls reject. */
  close(): Promise<void>;
}

/** The log's restarts so far, and the time they took (the node's writes wait while one runs). */
export interface WalRestarts {
  readonly count: number;
  readonly seconds: number;
}

export class StoreClosedError extends Error {
  override readonly name = "StoreClosedError";
  constructor() {
    super("the store is closed");
  }
}

/** Writes fail because the data directory's file system is full; they succeed again once space is freed. */
export class StorageFullError extends Error {
  override readonly name = "StorageFullError";
  /** How long a client should wait before trying again, in seconds. */
  readonly retryAfterSeconds = 5;
  constructor(dataDir: string, cause: string) {
    super(`the file system of ${dataDir} is full (${cause}); free space and writes resume`);
  }
}

/** The database is corrupt: the store serves nothing more (README, "Data directories"). */
export class StoreCorruptError extends Error {
  override readonly name = "StoreCorruptError";
  constructor(
    readonly dataDir: string,
    detail: string,
  ) {
    super(
      `the database in ${dataDir} is corrupt (${detail}). Stop the node, move the directory ` +
        "aside and start again: the node starts as a new origin and refills from its peers " +
        "(LIKES_ON_CORRUPTION=refill does this by itself)",
    );
  }
}

/** Another process holds the data directory. */
export class DataDirectoryLockedError extends Error {
  override readonly name = "DataDirectoryLockedError";
  constructor(dataDir: string) {
    super(
      `the data directory ${dataDir} is in use by another likes process; ` +
        "two nodes must never share one (give each its own LIKES_DATA_DIR)",
    );
  }
}

/** The data directory cannot be opened or written: the message names the path and the cause. */
export class DataDirectoryError extends Error {
  override readonly name = "DataDirectoryError";
  constructor(dataDir: string, cause: string) {
    super(`cannot use the data directory ${dataDir}: ${cause}`);
  }
}
