export * from "./types.js";
export { MemoryDisk, MemoryStore, type MemoryStoreOptions } from "./memory.js";
export { SchemaVersionError, SqliteStore, type SqliteStoreOptions } from "./sqlite.js";
