import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  LikeSet,
  VersionVector,
  digestsEqual,
  dotKey,
  nextOwnEntry,
  planMerge,
  withoutGapsOf,
  type Entry,
  type MergePlan,
  type OriginId,
  type PostId,
  type UserId,
} from "../../src/crdt/index.js";

const RUNS = 1000;
const ORIGINS = ["a~1", "b~2", "c~3"] as OriginId[];
const POSTS = ["p1", "p2", "🎉"] as PostId[];
const USERS = ["u1", "u2", "ü"] as UserId[];

/** A replica as every store keeps it: the dots it holds, its log, its set view, its saved prefixes. */
class Replica {
  readonly vv = new VersionVector();
  readonly log = new Map<string, Entry>();
  readonly likes = new LikeSet();
  /** What a store persists: the `advanced` seqs of every plan, written over each other. */
  readonly saved = new Map<OriginId, number>();
  newLikes = 0;

  merge(batch: readonly Entry[]): MergePlan {
    const plan = planMerge(this.vv, batch);
    for (const entry of plan.stored) {
      if (this.log.has(dotKey(entry))) throw new Error(`${dotKey(entry)} stored twice`);
      this.log.set(dotKey(entry), entry);
      if (this.likes.add(entry)) this.newLikes++;
    }
    for (const [origin, upTo] of plan.advanced) this.saved.set(origin, upTo);
    return plan;
  }

  /** Everything observable, in a canonical form. */
  state(): string {
    const likes = POSTS.map((post) => this.likes.users(post, undefined, Infinity));
    return JSON.stringify({
      log: [...this.log.keys()].sort(),
      digest: [...this.vv.digest()].sort(),
      ahead: this.vv.aheadCount(),
      likes,
      size: this.likes.size,
    });
  }
}

/**
 * The entries that exist in a cluster: seqs 1..n of a few origins, each dot naming one like
 * drawn from a small domain, so that one like is often carried by two dots.
 */
const universe = fc
  .tuple(
    ...ORIGINS.map((origin) =>
      fc
        .array(fc.tuple(fc.constantFrom(...POSTS), fc.constantFrom(...USERS)), { maxLength: 8 })
        .map((likes): Entry[] =>
          likes.map(([post, user], i) => ({ origin, seq: i + 1, post, user, ts: 1000 + i })),
        ),
    ),
  )
  .map((perOrigin) => perOrigin.flat());

/** Batches drawn from a universe: any subset, any order, with duplicates. */
const batchesOf = (entries: Entry[], count: number) =>
  fc
    .array(
      fc.array(fc.constantFrom(...(entries.length ? entries : [undefined])), { maxLength: 12 }),
      { minLength: count, maxLength: count },
    )
    .map((batches) => batches.map((b) => b.filter((e): e is Entry => e !== undefined)));

const withBatches = (count: number) =>
  universe.chain((entries) => fc.tuple(fc.constant(entries), batchesOf(entries, count)));

function replicaOf(...batches: (readonly Entry[])[]): Replica {
  const replica = new Replica();
  for (const batch of batches) replica.merge(batch);
  return replica;
}

describe("the merge rule every store runs (planMerge)", () => {
  it("is commutative: two batches in either order give the same replica", () => {
    fc.assert(
      fc.property(withBatches(2), ([, [a, b]]) => {
        expect(replicaOf(a!, b!).state()).toBe(replicaOf(b!, a!).state());
      }),
      { numRuns: RUNS },
    );
  });

  it("is associative: how batches are grouped does not matter", () => {
    fc.assert(
      fc.property(withBatches(3), ([, [a, b, c]]) => {
        const left = replicaOf([...a!, ...b!], c!).state();
        expect(replicaOf(a!, [...b!, ...c!]).state()).toBe(left);
        expect(replicaOf(a!, b!, c!).state()).toBe(left);
      }),
      { numRuns: RUNS },
    );
  });

  it("is idempotent: a batch merged again stores nothing and moves no prefix", () => {
    fc.assert(
      fc.property(withBatches(2), ([, [a, b]]) => {
        const replica = replicaOf(a!, b!);
        const before = replica.state();
        const again = replica.merge(a!);
        expect(again.stored).toEqual([]);
        expect(again.advanced.size).toBe(0);
        expect(replica.state()).toBe(before);
      }),
      { numRuns: RUNS },
    );
  });

  it("stores each new dot once, in the order given, whatever the duplicates", () => {
    fc.assert(
      fc.property(withBatches(2), ([, [held, batch]]) => {
        const replica = replicaOf(held!);
        const already = new Set(replica.log.keys());
        const expected = [...new Set(batch!.map(dotKey))].filter((k) => !already.has(k));
        const plan = replica.merge(batch!);
        expect(plan.stored.map(dotKey)).toEqual(expected);
      }),
      { numRuns: RUNS },
    );
  });

  it("ends as in-order delivery for any split, order and duplication of every entry", () => {
    fc.assert(
      fc.property(
        universe.chain((entries) =>
          fc.tuple(
            fc.constant(entries),
            fc.shuffledSubarray(entries, { minLength: entries.length }),
            fc.array(fc.nat(entries.length), { maxLength: 6 }),
            fc.array(fc.nat(Math.max(entries.length - 1, 0)), { maxLength: 6 }),
          ),
        ),
        ([entries, shuffled, cuts, repeats]) => {
          const stream = [...shuffled];
          for (const i of repeats) if (entries[i]) stream.push(entries[i]);
          const bounds = [0, ...[...new Set(cuts)].sort((x, y) => x - y), stream.length];
          const batches = bounds.slice(1).map((end, i) => stream.slice(bounds[i], end));
          const replica = replicaOf(...batches);
          expect(replica.state()).toBe(replicaOf(entries).state());
          expect(replica.vv.aheadCount()).toBe(0);
          expect(replica.log.size).toBe(entries.length);
          for (const origin of ORIGINS)
            expect(replica.vv.get(origin)).toBe(entries.filter((e) => e.origin === origin).length);
          // The set view counts a like carried by two dots once.
          expect(replica.newLikes).toBe(new Set(entries.map((e) => `${e.post}|${e.user}`)).size);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("advances a prefix only over held seqs, and what it says to save is the digest", () => {
    fc.assert(
      fc.property(withBatches(4), ([, batches]) => {
        const replica = new Replica();
        for (const batch of batches) {
          replica.merge(batch);
          expect(digestsEqual(replica.saved, replica.vv.digest())).toBe(true);
          for (const origin of ORIGINS) {
            const upTo = replica.vv.get(origin);
            for (let seq = 1; seq <= upTo; seq++)
              expect(replica.log.has(dotKey({ origin, seq }))).toBe(true);
            expect(replica.log.has(dotKey({ origin, seq: upTo + 1 }))).toBe(false);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("keeps a dot above a gap waiting until the gap fills", () => {
    const origin = "a~1" as OriginId;
    const entry = (seq: number): Entry => ({
      origin,
      seq,
      post: "p1" as PostId,
      user: `u${seq}` as UserId,
      ts: seq,
    });
    const replica = new Replica();
    const third = replica.merge([entry(3)]);
    expect(third.stored).toEqual([entry(3)]);
    expect(third.advanced.size).toBe(0);
    expect(replica.merge([entry(1), entry(1)]).advanced).toEqual(new Map([[origin, 1]]));
    expect(replica.merge([entry(3), entry(2)]).advanced).toEqual(new Map([[origin, 3]]));
    expect(replica.vv.aheadCount()).toBe(0);
  });

  it("takes a sender's own entries only without a gap, and drops none that extends its prefix", () => {
    fc.assert(
      fc.property(withBatches(3), fc.constantFrom(...ORIGINS), ([, [before, , batch]], origin) => {
        const whole = replicaOf(before ?? []);
        const kept = replicaOf(before ?? []);
        const taken = withoutGapsOf(kept.vv, batch ?? [], origin);
        const plan = kept.merge(taken);
        whole.merge(batch ?? []);
        // No new dot of the sender waits above a gap...
        for (const entry of plan.stored)
          if (entry.origin === origin) expect(entry.seq).toBeLessThanOrEqual(kept.vv.get(origin));
        // ...its prefix moves as far as the whole batch moves it, and other origins are untouched.
        expect(kept.vv.get(origin)).toBe(whole.vv.get(origin));
        const others = (entries: readonly Entry[]) => entries.filter((e) => e.origin !== origin);
        expect(others(taken)).toEqual(others(batch ?? []));
      }),
      { numRuns: RUNS },
    );
  });

  it("gives first-hand likes the next dots of their origin", () => {
    const vv = new VersionVector();
    const origin = "a~1" as OriginId;
    const post = "p" as PostId;
    const first = nextOwnEntry(vv, origin, post, "u" as UserId, 5, undefined);
    const traced = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const second = nextOwnEntry(vv, origin, post, "v" as UserId, 6, traced);
    expect([first.seq, second.seq, vv.get(origin)]).toEqual([1, 2, 2]);
    expect(first).not.toHaveProperty("traceparent");
    expect(second.traceparent).toBe(traced);
  });
});

describe("the set view (LikeSet)", () => {
  it("adds a like once, and lists a post's users in UTF-8 order", () => {
    const set = new LikeSet();
    const post = "p" as PostId;
    expect(set.add({ post, user: "b" as UserId })).toBe(true);
    expect(set.add({ post, user: "b" as UserId })).toBe(false);
    set.add({ post, user: "\u{1F600}" as UserId });
    set.add({ post, user: "\uFFFD" as UserId });
    expect([set.size, set.count(post), set.count("q" as PostId)]).toEqual([3, 3, 0]);
    expect(set.users(post, undefined, 10)).toEqual(["b", "\uFFFD", "\u{1F600}"]);
    expect(set.users(post, "b" as UserId, 1)).toEqual(["\uFFFD"]);
  });
});
