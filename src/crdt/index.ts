// The pure CRDT: ids, likes, entries and dots, version vectors, the set view and the merge rule.
export * from "./ids.js";
export * from "./like.js";
export * from "./entry.js";
export * from "./version-vector.js";
export * from "./like-set.js";
export * from "./merge.js";
