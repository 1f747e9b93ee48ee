// The merge rule of the replicated log: which entries of a batch a replica stores, and how far
// each origin's contiguous prefix moves. Every store runs it and persists the plan through its
// own primitives, so the laws its property tests check (test/unit/crdt-merge.test.ts) hold for the stores.
import type { Entry } from "./entry.js";
import type { OriginId, PostId, UserId } from "./ids.js";
import type { VersionVector } from "./version-vector.js";

/** What merging one batch changes in a replica. */
export interface MergePlan {
  /**
   * The entries whose dots the replica did not hold, each once, in the order given. The log
   * keeps all of them; the set view adds their likes, which is idempotent: a like already held,
   * or carried by two dots, is one like.
   */
  readonly stored: readonly Entry[];
  /** The new contiguous seq of every origin whose prefix moved; seqs above a gap wait. */
  readonly advanced: ReadonlyMap<OriginId, number>;
}

const NOTHING: MergePlan = { stored: [], advanced: new Map() };

/**
 * Plans the merge of `entries` into a replica whose dots are `vv`, and records them in `vv`.
 * The caller passes a copy when a failed write must leave its vector as it was.
 */
export function planMerge(vv: VersionVector, entries: readonly Entry[]): MergePlan {
  if (entries.length === 0) return NOTHING;
  const stored: Entry[] = [];
  // Per batch, not per entry: the prefix of each origin before the batch.
  const before = new Map<OriginId, number>();
  for (const entry of entries) {
    const { origin } = entry;
    if (!before.has(origin)) before.set(origin, vv.get(origin));
    if (vv.add(entry)) stored.push(entry);
  }
  const advanced = new Map<OriginId, number>();
  for (const [origin, seq] of before) {
    const upTo = vv.get(origin);
    if (upTo > seq) advanced.set(origin, upTo);
  }
  return { stored, advanced };
}

/**
 * The batch without the entries of `origin` that would sit above a gap in what `vv` holds of
 * it. For a sender's own pushes: it sends them again from what this replica acknowledges, so
 * they only wait; taken above a gap, they would be left behind if the sender died before
 * filling it, where no digest (one contiguous seq per origin) would ever carry them on.
 */
export function withoutGapsOf(
  vv: VersionVector,
  entries: readonly Entry[],
  origin: OriginId,
): readonly Entry[] {
  // The usual push: its own entries in order from the first seq not held, nothing waits.
  let expected = vv.get(origin) + 1;
  let inOrder = true;
  for (const entry of entries) {
    if (entry.origin !== origin) continue;
    if (entry.seq > expected) inOrder = false;
    expected = Math.max(expected, entry.seq + 1);
  }
  if (inOrder) return entries;
  const own = new Set<number>();
  for (const entry of entries) if (entry.origin === origin) own.add(entry.seq);
  // How far the prefix of `origin` reaches with the batch, in whatever order it comes.
  let next = vv.get(origin) + 1;
  while (own.has(next) || vv.has({ origin, seq: next })) next++;
  const waits = (entry: Entry) => entry.origin === origin && entry.seq > next && !vv.has(entry);
  return entries.some(waits) ? entries.filter((entry) => !waits(entry)) : entries;
}

/**
 * The entry for a like accepted first-hand and new to the set: the next dot of `origin`,
 * recorded in `vv`. A repeat of a held like gets no dot, so seqs count distinct likes.
 */
export function nextOwnEntry(
  vv: VersionVector,
  origin: OriginId,
  post: PostId,
  user: UserId,
  ts: number,
  traceparent: string | undefined,
): Entry {
  const seq = vv.get(origin) + 1;
  const entry: Entry = traceparent
    ? { origin, seq, post, user, ts, traceparent }
    : { origin, seq, post, user, ts };
  vv.add(entry);
  return entry;
}
