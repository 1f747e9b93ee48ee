// WAL checkpoints on a worker thread, so that no commit waits for one.
//
// With SQLite's automatic checkpoint, the commit that takes the WAL past 1000 pages copies
// them into the database and syncs it, on the event loop: the benchmark saw commits of
// 100–250 ms about once a second at 1000 likes/s, the tail of the convergence and request
// latencies. Here the node's connection never checkpoints; a second connection on a worker
// thread runs a PASSIVE checkpoint (it never blocks the writer) every `everyMs`. A checkpoint
// that fails (a full disk) is retried at the next tick, so checkpoints resume when space comes
// back; only if the worker itself dies does the node's connection checkpoint itself again.
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.module);
const db = new Database(workerData.file);
db.exec("PRAGMA busy_timeout = 5000");
const checkpoint = () => db.exec("PRAGMA wal_checkpoint(PASSIVE)");
let failing = false;
const timer = setInterval(() => {
  try {
    checkpoint();
    if (failing) parentPort.postMessage({ resumed: true });
    failing = false;
  } catch (error) {
    // Told once per run of failures, with the code the store classifies.
    if (!failing) parentPort.postMessage({ failed: { message: String(error), code: error.code } });
    failing = true;
  }
}, workerData.everyMs);
parentPort.on("message", () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export interface CheckpointerOptions {
  readonly file: string;
  readonly everyMs: number;
  /** Called once if the worker dies: the caller checkpoints on its own connection again. */
  readonly onFailure: (error: string) => void;
  /** Called when checkpoints start failing (with the error) and when they work again. */
  readonly onError?: (error: CheckpointError | undefined) => void;
}

export interface CheckpointError {
  readonly message: string;
  readonly code?: string;
}

export class Checkpointer {
  private readonly worker: Worker;
  private failed = false;
  private exited = false;

  constructor(options: CheckpointerOptions) {
    const fail = (error: string) => {
      if (this.failed) return;
      this.failed = true;
      options.onFailure(error);
    };
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        file: options.file,
        everyMs: options.everyMs,
        module: createRequire(import.meta.url).resolve("better-sqlite3"),
      },
    });
    this.worker.on("message", (message: { failed?: CheckpointError; resumed?: true }) => {
      if (message.failed) options.onError?.(message.failed);
      else if (message.resumed) options.onError?.(undefined);
    });
    this.worker.on("error", (error) => fail(String(error)));
    this.worker.on("exit", () => (this.exited = true));
    // Not a reason to keep the process alive; close() ends it.
    this.worker.unref();
  }

  /** Stops checkpointing and closes the worker's connection; resolves once the worker is gone. */
  close(): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      // Held while it closes: an unref'd worker would let the process exit before the store.
      this.worker.ref();
      this.worker.once("exit", () => resolve());
      this.worker.postMessage("close");
    });
  }
}
