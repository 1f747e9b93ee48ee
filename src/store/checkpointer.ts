// WAL checkpoints on a worker thread, so that no commit waits for one.
//
// With SQLite's automatic checkpoint, the commit that takes the WAL past 1000 pages copies
// them into the database and syncs it, on the event loop: the benchmark saw commits of
// 100–250 ms about once a second at 1000 likes/s, the tail of the convergence and request
// latencies. Here the node's connection never checkpoints; a second connection on a worker
// thread runs a PASSIVE checkpoint (it never blocks the writer) every `everyMs`. A checkpoint
// that fails (a full disk) is retried at the next tick, so checkpoints resume when space comes
// back; only if the worker itself dies does the node's connection checkpoint itself again.
//
// Under steady writes a PASSIVE checkpoint never catches up: the node commits while it copies,
// and SQLite starts the log over only once every frame of it is in the database. The log then
// grew without bound (880 MB after 40 s of 1000 likes/s on a receiving peer), each commit
// writing past its end into new file blocks. So once the log passes `restartBytes`, the tick
// follows its PASSIVE checkpoint with a second one (what came in during the first) and then a
// RESTART one: it holds the node's write lock while it copies what came in meanwhile and
// syncs, and the next commit writes from the log's start again, over pages the kernel still
// caches. A shared flag says when a restart is under way, so that the node's commits wait for
// it with the event loop free (group-commit.ts) rather than in SQLite's busy wait, which
// sleeps 1, 2, 5, 10 ms and more between tries and blocks the thread.
import { Worker } from "node:worker_threads";
import type { WalRestarts } from "./types.js";
import { SQLITE_MODULE } from "./sqlite-module.js";

const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.module);
const db = new Database(workerData.file);
db.exec("PRAGMA busy_timeout = 5000");
const passive = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
const restart = db.prepare("PRAGMA wal_checkpoint(RESTART)");
// A frame is a page and its 24-byte header.
const frameBytes = db.pragma("page_size", { simple: true }) + 24;
// shared[0]: 1 while a restart runs; shared[1]: restarts so far. heldMicros[0]: their time.
const shared = new Int32Array(workerData.shared);
const heldMicros = new BigInt64Array(workerData.heldMicros);
const checkpoint = () => {
  const { log } = passive.get();
  if (log * frameBytes < workerData.restartBytes) return;
  passive.get();
  Atomics.store(shared, 0, 1);
  const started = performance.now();
  try {
    restart.get();
  } finally {
    Atomics.store(shared, 0, 0);
    Atomics.add(shared, 1, 1);
    Atomics.add(heldMicros, 0, BigInt(Math.round((performance.now() - started) * 1000)));
  }
};
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
  /** The log's size (bytes) past which a checkpoint starts it over (see above). */
  readonly restartBytes: number;
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
  /**
   * Written by the worker: [0] is 1 while it restarts the log (and holds the write lock, or
   * waits for it); [1] counts the restarts it made.
   */
  private readonly shared = new Int32Array(new SharedArrayBuffer(8));
  /** The restarts' time, µs, added by the worker after each. */
  private readonly heldMicros = new BigInt64Array(new SharedArrayBuffer(8));
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
        restartBytes: options.restartBytes,
        shared: this.shared.buffer,
        heldMicros: this.heldMicros.buffer,
        module: SQLITE_MODULE,
      },
    });
    this.worker.on("message", (message: { failed?: CheckpointError; resumed?: true }) => {
      if (message.failed) options.onError?.(message.failed);
      else if (message.resumed) options.onError?.(undefined);
    });
    this.worker.on("error", (error) => fail(String(error)));
    this.worker.on("exit", () => {
      this.exited = true;
      // A worker gone mid-restart holds no lock any more.
      Atomics.store(this.shared, 0, 0);
    });
    // Not a reason to keep the process alive; close() ends it.
    this.worker.unref();
  }

  /** Whether a checkpoint is starting the log over now: commits should wait for it. */
  restarting(): boolean {
    return Atomics.load(this.shared, 0) === 1;
  }

  restarts(): WalRestarts {
    return {
      count: Atomics.load(this.shared, 1),
      seconds: Number(Atomics.load(this.heldMicros, 0)) / 1e6,
    };
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
