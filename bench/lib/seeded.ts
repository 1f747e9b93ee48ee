// The likes the benchmark fills stores with: one foreign origin's, over 10,000 posts in turn,
// each by a user of its own (bench/gen.ts, bench/commits.ts; the sections look for the origin).
import type { Entry, OriginId, PostId, UserId } from "../../src/crdt/index.js";

export const SEEDED_ORIGIN = "writer~bench0" as OriginId;
export const SEEDED_POSTS = 10_000;

/** The seeded origin's entries `first..last` (seqs, inclusive), all with the same `ts`. */
export function seededEntries(first: number, last: number, ts: number): Entry[] {
  const entries: Entry[] = [];
  for (let seq = first; seq <= last; seq++)
    entries.push({
      origin: SEEDED_ORIGIN,
      seq,
      post: `post-${(seq - 1) % SEEDED_POSTS}` as PostId,
      user: `user-${seq - 1}` as UserId,
      ts,
    });
  return entries;
}
