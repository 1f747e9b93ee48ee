// Zipf's law over ranks 1..n: P(k) ∝ 1/k^s. With s ≈ 1 a few posts take most of the likes and
// a long tail gets the rest, as on a real feed.

/** Draws ranks 1..n, rank 1 the most likely, from uniform numbers in [0, 1). */
export class ZipfSampler {
  /** cdf[i] = P(rank ≤ i + 1); the last one is 1. */
  private readonly cdf: Float64Array;

  constructor(
    readonly n: number,
    readonly exponent: number,
  ) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`n must be an integer ≥ 1, not ${n}`);
    if (!Number.isFinite(exponent) || exponent < 0)
      throw new RangeError(`exponent must be a finite number ≥ 0, not ${exponent}`);
    this.cdf = new Float64Array(n);
    let total = 0;
    for (let k = 1; k <= n; k++) {
      total += k ** -exponent;
      this.cdf[k - 1] = total;
    }
    for (let i = 0; i < n; i++) this.cdf[i] = (this.cdf[i] as number) / total;
    // Rounding can leave the last one a hair under 1; u just below 1 must still find a rank.
    this.cdf[n - 1] = 1;
  }

  /** The rank whose cumulative probability first exceeds `u` (binary search, O(log n)). */
  rank(u: number): number {
    let lo = 0;
    let hi = this.n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.cdf[mid] as number) > u) hi = mid;
      else lo = mid + 1;
    }
    return lo + 1;
  }

  /** P(rank = k), for tests and the help text's "post 1 gets x%". */
  probability(k: number): number {
    if (k < 1 || k > this.n) return 0;
    return (this.cdf[k - 1] as number) - (k === 1 ? 0 : (this.cdf[k - 2] as number));
  }
}

/** A seeded uniform source in [0, 1) (mulberry32): a run is replayable from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
