// A checked snapshot in pages of another size than this node's (a node of a version before 4 KiB
// pages serves 16 KiB ones) is rewritten in this node's before it is installed, so that a joining
// node does not inherit what makes every small commit write four times the log (sqlite-open.ts).
// VACUUM INTO a sibling that any start removes (its name begins as the download's), on a worker
// thread: about 1.2 s per 5,000,000 likes here, while the node's ports answer /healthz and
// /metrics. A copy that cannot be rewritten (no room for a second one) is installed as it is.
import { Worker } from "node:worker_threads";
import { open, rename, rm } from "node:fs/promises";
import { PAGE_SIZE } from "./sqlite-schema.js";
import { SQLITE_MODULE } from "./sqlite-module.js";

const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const Database = require(workerData.module);
const db = new Database(workerData.path, { fileMustExist: true });
try {
  db.exec("PRAGMA page_size = " + workerData.pageSize);
  // exec, not a prepared statement: on Node 24 a better-sqlite3 Statement that the GC collects
  // at the wrong moment aborts the process (sqlite.ts).
  db.exec("VACUUM INTO '" + workerData.into.replaceAll("'", "''") + "'");
} finally {
  db.close();
}
`;

export type RepageOutcome =
  | { readonly repaged: { readonly from: number; readonly to: number } }
  | { readonly kept: { readonly pageSize: number; readonly error: string } }
  | Record<string, never>;

/** Rewrites the database at `path` (closed, rollback journal) in PAGE_SIZE pages if it has others. */
export async function repage(path: string): Promise<RepageOutcome> {
  const from = await pageSizeOf(path);
  if (from === PAGE_SIZE) return {};
  const into = `${path}-repaged`;
  try {
    await rm(into, { force: true });
    await vacuumInto(path, into);
    // VACUUM INTO writes its file without a sync; the rename must not outlive its bytes.
    await syncPath(into);
    await rename(into, path);
    return { repaged: { from, to: PAGE_SIZE } };
  } catch (error) {
    await rm(into, { force: true, recursive: true }).catch(() => undefined);
    return { kept: { pageSize: from, error: String(error) } };
  }
}

/** fsync of a file or a directory, opened to read (Linux syncs it all the same). */
export async function syncPath(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The page size in a database file's header (bytes 16–17; 1 stands for 65536). */
async function pageSizeOf(path: string): Promise<number> {
  const file = await open(path, "r");
  try {
    const header = Buffer.alloc(2);
    await file.read(header, 0, 2, 16);
    const size = header.readUInt16BE(0);
    return size === 1 ? 65536 : size;
  } finally {
    await file.close();
  }
}

function vacuumInto(path: string, into: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { module: SQLITE_MODULE, path, into, pageSize: PAGE_SIZE },
    });
    worker.once("error", reject);
    worker.once("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`the rewrite's worker exited with ${code}`)),
    );
  });
}
