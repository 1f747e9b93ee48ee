// The store layer: the Store port, its SQLite adapter and its in-memory adapter.
export * from "./types.js";
export { MemoryDisk, MemoryStore, type MemoryStoreOptions } from "./memory.js";
export { SqliteStore, type SqliteStoreOptions } from "./sqlite.js";
export { SchemaVersionError } from "./sqlite-schema.js";
