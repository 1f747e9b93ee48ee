// Writers waiting for replicas: a POST with consistency quorum or all is answered once that many
// nodes hold its like, or at its timeout with the count it reached.
import type { Clock, Timer } from "./ports.js";

interface Waiter {
  readonly seq: number;
  readonly required: number;
  readonly resolve: (acks: number) => void;
  readonly timer: Timer;
}

/** Nodes (this one included) that hold own entry `seq`. */
export type AcksFor = (seq: number) => number;

export class WriteWaiters {
  private waiters: Waiter[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly acksFor: AcksFor,
  ) {}

  /** Resolves with the number of nodes holding `seq` once `required` do, or at the timeout. */
  wait(seq: number, required: number, timeoutMs: number): Promise<number> {
    return new Promise((resolve) => {
      const waiter: Waiter = {
        seq,
        required,
        resolve,
        timer: this.clock.setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          resolve(this.acksFor(seq));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Answers the writers whose entries now have their replicas. */
  settle(): void {
    if (this.waiters.length === 0) return;
    this.waiters = this.waiters.filter((waiter) => {
      const acks = this.acksFor(waiter.seq);
      if (acks < waiter.required) return true;
      waiter.timer.cancel();
      waiter.resolve(acks);
      return false;
    });
  }

  /** Answers every writer now, with what it reached. */
  stop(): void {
    for (const waiter of this.waiters) {
      waiter.timer.cancel();
      waiter.resolve(this.acksFor(waiter.seq));
    }
    this.waiters = [];
  }
}
