// Own entries not yet held by every peer, in seq order, for the convergence metric: each is
// reported once every known peer acknowledged it.
import type { Metrics, OwnEntry } from "../telemetry/types.js";

/**
 * How many own entries are tracked. A peer down for long must not grow this without bound; past
 * it the oldest are forgotten (never reported), in O(1): a write must not cost more while a peer
 * is down, as an array's shift() did (16% of a node's CPU at 100,000 unconverged entries).
 */
export const MAX_TRACKED = 100_000;

/** A fixed-size ring of own entries in seq order: push at the back, take from the front. */
export class ConvergenceTracker {
  private readonly ring: (OwnEntry | undefined)[];
  private head = 0;
  private size = 0;

  constructor(
    private readonly metrics: Pick<Metrics, "entryConverged">,
    private readonly capacity = MAX_TRACKED,
  ) {
    this.ring = new Array<OwnEntry | undefined>(capacity);
  }

  get length(): number {
    return this.size;
  }

  /** Tracks a new own entry; the oldest is forgotten when the ring is full. */
  add(entry: OwnEntry): void {
    if (this.size === this.capacity) {
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
      this.size--;
    }
    this.ring[(this.head + this.size) % this.capacity] = entry;
    this.size++;
  }

  /** Reports every tracked entry with seq ≤ `everywhere` as converged at `now` (ms). */
  settle(everywhere: number, now: number): void {
    while (this.size > 0) {
      const entry = this.ring[this.head] as OwnEntry;
      if (entry.seq > everywhere) return;
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
      this.size--;
      this.metrics.entryConverged(entry, Math.max(0, now - entry.ts) / 1000);
    }
  }
}
