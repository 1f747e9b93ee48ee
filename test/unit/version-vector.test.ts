import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  MAX_SEQ,
  VersionVector,
  decodeDigest,
  digestsEqual,
  encodeDigest,
  mergeDigests,
  missingRanges,
  type Dot,
  type OriginId,
} from "../../src/crdt/index.js";

const RUNS = 1000;
const ORIGINS = ["a~1", "b~2", "c~3"] as OriginId[];

/** Every dot of a few origins with seqs 1..n, plus a delivery that shuffles and duplicates them. */
const deliveries = fc.tuple(fc.nat(20), fc.nat(20), fc.nat(20)).chain((counts) => {
  const dots: Dot[] = counts.flatMap((n, i) =>
    Array.from({ length: n }, (_, k) => ({ origin: ORIGINS[i] as OriginId, seq: k + 1 })),
  );
  const duplicated = fc.array(fc.constantFrom(...(dots.length ? dots : [undefined])), {
    maxLength: 20,
  });
  return fc.tuple(
    fc.constant(dots),
    fc.shuffledSubarray(dots, { minLength: dots.length }),
    duplicated,
  );
});

describe("version vector", () => {
  it("ends equal to in-order delivery under any order and duplication", () => {
    fc.assert(
      fc.property(deliveries, ([inOrder, shuffled, extra]) => {
        const expected = new VersionVector();
        for (const dot of inOrder) expected.add(dot);
        const actual = new VersionVector();
        const stream = [...shuffled];
        for (const dot of extra) if (dot) stream.splice(dot.seq % (stream.length + 1), 0, dot);
        for (const dot of stream) actual.add(dot);
        return digestsEqual(actual.digest(), expected.digest()) && actual.aheadCount() === 0;
      }),
      { numRuns: RUNS },
    );
  });

  it("advances only over contiguous seqs", () => {
    const vv = new VersionVector();
    const a = "a~1" as OriginId;
    expect(vv.add({ origin: a, seq: 2 })).toBe(true);
    expect(vv.get(a)).toBe(0);
    expect(vv.has({ origin: a, seq: 2 })).toBe(true);
    expect(vv.add({ origin: a, seq: 2 })).toBe(false);
    vv.add({ origin: a, seq: 1 });
    expect(vv.get(a)).toBe(2);
    expect(vv.aheadCount()).toBe(0);
  });

  it("missing ranges are exactly what the other side lacks", () => {
    const digest = fc
      .dictionary(fc.constantFrom(...ORIGINS), fc.nat(50))
      .map((record) => new Map(Object.entries(record)) as Map<OriginId, number>);
    fc.assert(
      fc.property(digest, digest, (have, other) => {
        const patched = new Map(other);
        for (const range of missingRanges(have, other)) {
          if (range.after !== (other.get(range.origin) ?? 0)) return false;
          patched.set(range.origin, range.upTo);
        }
        return (
          digestsEqual(mergeDigests(have, other), mergeDigests(patched, other)) &&
          missingRanges(have, patched).length === 0
        );
      }),
      { numRuns: RUNS },
    );
  });

  it("round-trips through its wire form and rejects malformed digests", () => {
    const digest = new Map([
      ["a~1", 3],
      ["b~2", 0],
    ]) as Map<OriginId, number>;
    expect(decodeDigest(JSON.parse(JSON.stringify(encodeDigest(digest))))).toEqual(digest);
    for (const bad of [
      null,
      [],
      { "no-tilde": 1 },
      { "a~1": -1 },
      { "a~1": 1.5 },
      { "a~1": MAX_SEQ + 1 },
      { "a~1": "1" },
      "x",
    ])
      expect(decodeDigest(bad)).toBeNull();
  });
});
