// The write path every store shares: the merge rule of src/crdt run in group-committed
// transactions, persisted through each adapter's primitives.
import {
  nextOwnEntry,
  planMerge,
  withoutGapsOf,
  type VersionVector,
  type Digest,
  type Entry,
  type Like,
  type NodeName,
  type OriginId,
  type PostId,
  type SeqRange,
  type UserId,
} from "../crdt/index.js";
import type { Metrics } from "../telemetry/types.js";
import { GroupCommit } from "./group-commit.js";
import type { AcceptResult, ApplyResult, Store } from "./types.js";

type WriteOp =
  | {
      readonly kind: "accept";
      readonly like: Like;
      readonly ts: number;
      readonly traceparent?: string;
    }
  | { readonly kind: "apply"; readonly entries: readonly Entry[]; readonly inOrder?: OriginId };

/**
 * The write path shared by every store: a log of entries keyed by dot, the set view of likes,
 * and the version vector, all changed together in one group-committed transaction.
 * Adapters supply the storage primitives.
 */
export abstract class LogStore implements Store {
  private vv: VersionVector;
  private committed: Digest;
  private readonly writes: GroupCommit<WriteOp, AcceptResult | ApplyResult>;

  protected constructor(
    readonly nodeName: NodeName,
    readonly origin: OriginId,
    vv: VersionVector,
    schedule?: (flush: () => void) => void,
    metrics?: Pick<Metrics, "storeCommitted">,
  ) {
    this.vv = vv;
    this.committed = vv.digest();
    this.writes = new GroupCommit(
      (ops) => this.commitBatch(ops),
      schedule,
      metrics,
      () => this.writesHeld(),
    );
  }

  /** Whether the database's write lock is held elsewhere now: commits wait (group-commit.ts). */
  protected writesHeld(): boolean {
    return false;
  }

  /** Runs `fn` atomically: all of its primitive writes persist, or none. */
  protected abstract transaction<T>(fn: () => T): T;
  protected abstract insertEntry(entry: Entry): void;
  /** Adds the like to the set view and its post's count; false when it was there. */
  protected abstract insertLike(post: PostId, user: UserId): boolean;
  /** Adds likes to the set view, in any order; returns how many were not there. */
  protected insertLikes(likes: readonly Like[]): number {
    let added = 0;
    for (const like of likes) if (this.insertLike(like.post, like.user)) added++;
    return added;
  }
  /** Persists that every seq of `origin` up to `upTo` is held. */
  protected abstract saveContiguous(origin: OriginId, upTo: number): void;
  protected abstract closeStorage(): void | Promise<void>;

  abstract entries(range: SeqRange, limit: number): Entry[];
  abstract count(post: PostId): number;
  abstract liked(post: PostId, user: UserId): boolean;
  abstract users(post: PostId, after: UserId | undefined, limit: number): UserId[];
  abstract setSize(): number;

  accept(like: Like, ts: number, traceparent?: string): Promise<AcceptResult> {
    const op: WriteOp = traceparent
      ? { kind: "accept", like, ts, traceparent }
      : { kind: "accept", like, ts };
    return this.writes.submit(op) as Promise<AcceptResult>;
  }

  apply(entries: readonly Entry[], inOrder?: OriginId): Promise<ApplyResult> {
    if (entries.length === 0) return Promise.resolve({ stored: [], newLikes: 0 });
    const op: WriteOp = inOrder ? { kind: "apply", entries, inOrder } : { kind: "apply", entries };
    return this.writes.submit(op) as Promise<ApplyResult>;
  }

  digest(): Digest {
    return this.committed;
  }

  async close(): Promise<void> {
    this.writes.close();
    await this.closeStorage();
  }

  private commitBatch(ops: readonly WriteOp[]): (AcceptResult | ApplyResult)[] {
    // Work on a copy of the version vector so that a failed transaction leaves it untouched.
    const vv = this.vv.clone();
    const results = this.transaction(() =>
      ops.map((op) => (op.kind === "accept" ? this.acceptOne(vv, op) : this.applyMany(vv, op))),
    );
    this.vv = vv;
    this.committed = vv.digest();
    return results;
  }

  private acceptOne(vv: VersionVector, op: Extract<WriteOp, { kind: "accept" }>): AcceptResult {
    const { post, user } = op.like;
    if (!this.insertLike(post, user)) return { isNew: false };
    const entry = nextOwnEntry(vv, this.origin, post, user, op.ts, op.traceparent);
    this.insertEntry(entry);
    this.saveContiguous(this.origin, entry.seq);
    return { isNew: true, entry };
  }

  private applyMany(vv: VersionVector, op: Extract<WriteOp, { kind: "apply" }>): ApplyResult {
    // Checked at commit, against what the batches committed before it in order left.
    const entries = op.inOrder ? withoutGapsOf(vv, op.entries, op.inOrder) : op.entries;
    const { stored, advanced } = planMerge(vv, entries);
    for (const entry of stored) this.insertEntry(entry);
    const newLikes = this.insertLikes(stored);
    for (const [origin, upTo] of advanced) this.saveContiguous(origin, upTo);
    return { stored, newLikes };
  }
}
