export * from "./ids.js";
export * from "./like.js";
export * from "./entry.js";
export * from "./version-vector.js";
export * from "./gset.js";
