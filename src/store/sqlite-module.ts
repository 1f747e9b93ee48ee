// Where better-sqlite3 is, for code that loads it outside this module graph: the checkpoint and
// rewrite workers (eval'd sources, which resolve nothing themselves) and the copy check's child.
import { createRequire } from "node:module";

export const SQLITE_MODULE = createRequire(import.meta.url).resolve("better-sqlite3");
