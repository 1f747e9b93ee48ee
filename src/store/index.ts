// The store layer: the Store port, its SQLite adapter and its in-memory adapter.
export * from "./types.js";
export { MemoryDisk, MemoryStore, type MemoryStoreOptions } from "./memory.js";
export { SqliteStore } from "./sqlite.js";
export type { SqliteStoreOptions } from "./sqlite-options.js";
export type { StorageCondition } from "./storage-health.js";
export { SchemaVersionError } from "./sqlite-schema.js";
export {
  MAX_SNAPSHOT_BYTES,
  SnapshotDownload,
  SnapshotRefusedError,
  StoreSnapshot,
  removeStaleSnapshots,
  type InstallReport,
  type SnapshotPromise,
} from "./snapshot.js";
export { SNAPSHOT_CHECKSUM, checkCopy, type CopyVerdict } from "./copy-check.js";
export { DataDirectory } from "./data-dir.js";
