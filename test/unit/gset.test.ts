import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GSet, likeKey, type Like, type PostId, type UserId } from "../../src/crdt/index.js";

const RUNS = 1000;
const like = fc.record({
  post: fc.constantFrom("p1", "p2", "p3", "🎉") as fc.Arbitrary<PostId>,
  user: fc.constantFrom("u1", "u2", "u3", "ü") as fc.Arbitrary<UserId>,
});
const gset = fc
  .array(like, { maxLength: 12 })
  .map((likes) => new GSet<Like>((l) => likeKey(l.post, l.user), likes));

describe("G-Set laws", () => {
  it("merge is commutative", () => {
    fc.assert(
      fc.property(gset, gset, (a, b) => a.merge(b).equals(b.merge(a))),
      { numRuns: RUNS },
    );
  });

  it("merge is associative", () => {
    fc.assert(
      fc.property(gset, gset, gset, (a, b, c) =>
        a
          .merge(b)
          .merge(c)
          .equals(a.merge(b.merge(c))),
      ),
      { numRuns: RUNS },
    );
  });

  it("merge is idempotent", () => {
    fc.assert(
      fc.property(
        gset,
        gset,
        (a, b) => a.merge(a).equals(a) && a.merge(b).merge(b).equals(a.merge(b)),
      ),
      { numRuns: RUNS },
    );
  });

  it("merge never loses an element", () => {
    fc.assert(
      fc.property(gset, gset, (a, b) => {
        const union = a.merge(b);
        return [...a.values(), ...b.values()].every((l) => union.has(l));
      }),
      { numRuns: RUNS },
    );
  });

  it("adding an element twice is one element", () => {
    const set = new GSet<Like>((l) => likeKey(l.post, l.user));
    expect(set.add({ post: "p" as PostId, user: "u" as UserId })).toBe(true);
    expect(set.add({ post: "p" as PostId, user: "u" as UserId })).toBe(false);
    expect(set.size).toBe(1);
  });
});
