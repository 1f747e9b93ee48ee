// Version vectors: per origin, the highest seq below which every entry is held; the digest
// that anti-entropy exchanges, and the arithmetic on it.
import type { Dot } from "./entry.js";
import type { OriginId } from "./ids.js";

/**
 * What a version vector says on the wire: origin → highest seq such that every seq 1..n of that
 * origin is held. Its size grows with the number of origins, never with the number of likes.
 */
export type Digest = ReadonlyMap<OriginId, number>;

/** A range of one origin's seqs, `after` exclusive and `upTo` inclusive. */
export interface SeqRange {
  readonly origin: OriginId;
  readonly after: number;
  readonly upTo: number;
}

/**
 * A version vector that accepts dots in any order: seqs above a gap are remembered, and the
 * contiguous prefix advances only when the gap fills.
 */
export class VersionVector {
  private readonly contiguous = new Map<OriginId, number>();
  private readonly ahead = new Map<OriginId, Set<number>>();

  static from(digest: Digest): VersionVector {
    const vv = new VersionVector();
    for (const [origin, seq] of digest) if (seq > 0) vv.contiguous.set(origin, seq);
    return vv;
  }

  /** Highest seq of `origin` below which nothing is missing (0 when none). */
  get(origin: OriginId): number {
    return this.contiguous.get(origin) ?? 0;
  }

  has(dot: Dot): boolean {
    return dot.seq <= this.get(dot.origin) || (this.ahead.get(dot.origin)?.has(dot.seq) ?? false);
  }

  /** Records a dot; false when it was already there. */
  add(dot: Dot): boolean {
    if (this.has(dot)) return false;
    const { origin } = dot;
    let upTo = this.get(origin);
    if (dot.seq !== upTo + 1) {
      let held = this.ahead.get(origin);
      if (!held) this.ahead.set(origin, (held = new Set()));
      held.add(dot.seq);
      return true;
    }
    upTo = dot.seq;
    const held = this.ahead.get(origin);
    if (held) {
      while (held.delete(upTo + 1)) upTo++;
      if (held.size === 0) this.ahead.delete(origin);
    }
    this.contiguous.set(origin, upTo);
    return true;
  }

  origins(): OriginId[] {
    return [...new Set([...this.contiguous.keys(), ...this.ahead.keys()])];
  }

  /** Seqs held above a gap, per origin: they wait until the gap fills. */
  aheadCount(): number {
    let n = 0;
    for (const held of this.ahead.values()) n += held.size;
    return n;
  }

  digest(): Digest {
    return new Map(this.contiguous);
  }

  clone(): VersionVector {
    const copy = VersionVector.from(this.contiguous);
    for (const [origin, held] of this.ahead) copy.ahead.set(origin, new Set(held));
    return copy;
  }
}

/** The ranges that `have` holds contiguously and `other` lacks. */
export function missingRanges(have: Digest, other: Digest): SeqRange[] {
  const ranges: SeqRange[] = [];
  for (const [origin, upTo] of have) {
    const after = other.get(origin) ?? 0;
    if (upTo > after) ranges.push({ origin, after, upTo });
  }
  return ranges;
}

/** Pointwise maximum: what is known to be held when both digests are. */
export function mergeDigests(a: Digest, b: Digest): Map<OriginId, number> {
  const merged = new Map(a);
  for (const [origin, seq] of b) if (seq > (merged.get(origin) ?? 0)) merged.set(origin, seq);
  return merged;
}

/**
 * What `have` says that `base` does not: `have`'s seq for every origin where the two differ, 0
 * where `have` holds none. `patchDigest(base, digestDiff(have, base))` is `have` again.
 */
export function digestDiff(have: Digest, base: Digest): Map<OriginId, number> {
  const diff = new Map<OriginId, number>();
  for (const [origin, seq] of have) if (seq !== (base.get(origin) ?? 0)) diff.set(origin, seq);
  for (const [origin, seq] of base) if (seq > 0 && !have.has(origin)) diff.set(origin, 0);
  return diff;
}

/** `base` with the seqs of `diff` written over it: undoes `digestDiff`. */
export function patchDigest(base: Digest, diff: Digest): Map<OriginId, number> {
  const patched = new Map(base);
  for (const [origin, seq] of diff) patched.set(origin, seq);
  return patched;
}

export function digestsEqual(a: Digest, b: Digest): boolean {
  const nonZero = (d: Digest) => [...d].filter(([, seq]) => seq > 0);
  const left = nonZero(a);
  return left.length === nonZero(b).length && left.every(([o, seq]) => b.get(o) === seq);
}

export function encodeDigest(digest: Digest): Record<string, number> {
  return Object.fromEntries(digest);
}
