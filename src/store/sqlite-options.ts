// What a SQLite store is opened with: its directory, durability, and what it tells the node.
import type { NodeName } from "../crdt/index.js";
import type { Metrics } from "../telemetry/types.js";
import type { DataDirectory } from "./data-dir.js";
import type { StorageCondition } from "./storage-health.js";

export interface SqliteStoreOptions {
  readonly dataDir: string;
  /** The data directory already held (a snapshot bootstrap takes it first); opened otherwise. */
  readonly directory?: DataDirectory;
  /**
   * The database was checked page by page moments ago (a snapshot just installed): the start
   * skips its own integrity check, which would read every page again.
   */
  readonly integrityChecked?: boolean;
  readonly nodeName: NodeName;
  /** `always`: synchronous=FULL, a commit survives power loss; `normal`: it survives kill -9. */
  readonly fsync: "normal" | "always";
  /** `refill`: a corrupt database found at start is moved aside and the node starts anew. */
  readonly onCorruption?: "refuse" | "refill";
  /** Told the duration of every group commit. */
  readonly metrics?: Pick<Metrics, "storeCommitted">;
  /** WAL checkpoints on a worker thread every this many ms (checkpointer.ts); 0: in commits. */
  readonly checkpointEveryMs?: number;
  /** The log's size (bytes) past which a background checkpoint starts it over; 32 MiB. */
  readonly walRestartBytes?: number;
  /** Told why background checkpoints stopped (commits checkpoint again from then on). */
  readonly onCheckpointFailure?: (error: string) => void;
  /** Told when background checkpoints start failing (with why) and when they work again. */
  readonly onCheckpointError?: (error: string | undefined) => void;
  /** Told when the disk fills, is writable again, or the database turns out corrupt. */
  readonly onCondition?: (condition: StorageCondition, detail: string) => void;
  /** Told where a corrupt database was moved with `onCorruption: "refill"`. */
  readonly onMovedAside?: (to: string, detail: string) => void;
}
