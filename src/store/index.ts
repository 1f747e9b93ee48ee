export * from "./types.js";
export { MemoryDisk, MemoryStore, type MemoryStoreOptions } from "./memory.js";
export { SqliteStore, type SqliteStoreOptions } from "./sqlite.js";
