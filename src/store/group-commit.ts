// Group commit: the writes of one turn of the event loop share one transaction.
import type { Metrics } from "../telemetry/types.js";
import { StoreClosedError } from "./types.js";

/** How long a commit waits for a lock held elsewhere before it goes ahead (and blocks). */
const MAX_HELD_MS = 5000;

interface Pending<Op, R> {
  readonly op: Op;
  resolve(result: R): void;
  reject(error: unknown): void;
}

/**
 * Batches the writes that arrive within one turn of the event loop into a single transaction:
 * concurrent requests share one commit, and each promise resolves only once it is committed.
 */
export class GroupCommit<Op, R> {
  private queue: Pending<Op, R>[] = [];
  private scheduled = false;
  private closed = false;
  /** When the commit now waiting for a lock held elsewhere began to wait. */
  private heldSince: number | undefined;

  constructor(
    /** Runs every op of a batch in one transaction; throws to fail the whole batch. */
    private readonly commit: (ops: readonly Op[]) => R[],
    private readonly schedule: (flush: () => void) => void = (flush) => setImmediate(flush),
    /** Told how long each successful commit took. */
    private readonly metrics?: Pick<Metrics, "storeCommitted">,
    /**
     * While this says so, a commit waits a millisecond at a time, the event loop free, rather
     * than block in the database's busy wait: its write lock is held by a checkpoint that
     * starts the log over (checkpointer.ts). At most MAX_HELD_MS.
     */
    private readonly held: () => boolean = () => false,
  ) {}

  submit(op: Op): Promise<R> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ op, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        this.schedule(() => this.flush());
      }
    });
  }

  /** Commits what is queued now (`force`: even while the write lock is held elsewhere). */
  flush(force = false): void {
    this.scheduled = false;
    if (this.queue.length === 0) return;
    if (!force && this.held()) {
      this.heldSince ??= performance.now();
      if (performance.now() - this.heldSince < MAX_HELD_MS) {
        this.scheduled = true;
        setTimeout(() => this.flush(), 1);
        return;
      }
    }
    this.heldSince = undefined;
    const batch = this.queue;
    this.queue = [];
    let results: R[];
    const started = performance.now();
    try {
      results = this.commit(batch.map((p) => p.op));
    } catch (error) {
      for (const p of batch) p.reject(error);
      return;
    }
    this.metrics?.storeCommitted((performance.now() - started) / 1000);
    batch.forEach((p, i) => p.resolve(results[i] as R));
  }

  /** Commits what is queued and refuses anything after. */
  close(): void {
    this.flush(true);
    this.closed = true;
  }
}
