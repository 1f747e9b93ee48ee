// Latency percentiles in bounded memory: a log-bucketed histogram (2% relative precision), so a
// run of hours keeps a few kilobytes, and a sliding window of them for the progress line.

const MIN_MS = 0.01;
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
/** Buckets up to 10 minutes; anything slower lands in the last one. */
const BUCKETS = Math.ceil(Math.log(600_000 / MIN_MS) / LOG_GROWTH) + 1;

function bucketOf(ms: number): number {
  if (!(ms > MIN_MS)) return 0;
  return Math.min(BUCKETS - 1, Math.floor(Math.log(ms / MIN_MS) / LOG_GROWTH) + 1);
}

/** The value a bucket stands for: the geometric middle of its bounds. */
function valueOf(bucket: number): number {
  if (bucket === 0) return MIN_MS;
  return MIN_MS * GROWTH ** (bucket - 0.5);
}

export class LatencyHistogram {
  private readonly counts = new Uint32Array(BUCKETS);
  private total = 0;
  private maxMs = 0;

  record(ms: number): void {
    const b = bucketOf(ms);
    this.counts[b] = (this.counts[b] as number) + 1;
    this.total++;
    if (ms > this.maxMs) this.maxMs = ms;
  }

  get count(): number {
    return this.total;
  }

  get max(): number {
    return this.maxMs;
  }

  /** Adds another histogram's counts into this one. */
  add(other: LatencyHistogram): void {
    for (let i = 0; i < BUCKETS; i++)
      this.counts[i] = (this.counts[i] as number) + (other.counts[i] as number);
    this.total += other.total;
    this.maxMs = Math.max(this.maxMs, other.maxMs);
  }

  clear(): void {
    this.counts.fill(0);
    this.total = 0;
    this.maxMs = 0;
  }

  /** The q-quantile (0 < q ≤ 1) within 2%, or undefined when empty; never above the max. */
  quantile(q: number): number | undefined {
    if (this.total === 0) return undefined;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i] as number;
      if (seen >= rank) return Math.min(valueOf(i), this.maxMs);
    }
    return this.maxMs;
  }
}

/**
 * The latencies of the last `slots` × `slotMs` ms: one histogram per slot in a ring, a slot
 * reused (cleared) once it is older than the window. Time is given by the caller.
 */
export class LatencyWindow {
  private readonly ring: { slot: number; histogram: LatencyHistogram }[];

  constructor(
    private readonly slots = 5,
    private readonly slotMs = 1000,
  ) {
    this.ring = Array.from({ length: slots }, () => ({
      slot: -1,
      histogram: new LatencyHistogram(),
    }));
  }

  get spanMs(): number {
    return this.slots * this.slotMs;
  }

  record(nowMs: number, latencyMs: number): void {
    const slot = Math.floor(nowMs / this.slotMs);
    const cell = this.ring[slot % this.slots] as (typeof this.ring)[number];
    if (cell.slot !== slot) {
      cell.slot = slot;
      cell.histogram.clear();
    }
    cell.histogram.record(latencyMs);
  }

  /** The latencies recorded in the window that ends at `nowMs`, merged. */
  snapshot(nowMs: number): LatencyHistogram {
    const current = Math.floor(nowMs / this.slotMs);
    const merged = new LatencyHistogram();
    for (const cell of this.ring)
      if (cell.slot > current - this.slots && cell.slot <= current) merged.add(cell.histogram);
    return merged;
  }
}
