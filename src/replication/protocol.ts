// The peer protocol: its messages, and the answers to them as functions of the message and the
// store's state (in the shape of y-protocols' sync); the caller owns the socket.
import {
  digestDiff,
  missingRanges,
  type Digest,
  type Entry,
  type NodeName,
  type OriginId,
  type SeqRange,
} from "../crdt/index.js";
import type { Store } from "../store/index.js";

/** Who sent a message: replies and requests both say it, so each side learns the other's origin. */
export interface Sender {
  readonly node: NodeName;
  readonly origin: OriginId;
}

/**
 * Push: entries the receiver may lack, and, when the receiver's answer to an earlier push
 * carried its own entries (a ride), the sender's seq of the receiver's origin once it applied
 * them (`acks`, absent otherwise): the acknowledgement that a ride has no answer of its own for.
 */
export interface DeltasRequest extends Sender {
  readonly kind: "deltas";
  readonly entries: readonly Entry[];
  readonly acks?: Digest;
}

/**
 * Anti-entropy: the caller's version vector. A catch-up that keeps several pages in flight
 * names each page's `window` (one origin's seqs): the page then holds only entries of it, and
 * `vv` stays what the caller holds, whatever pages are still on their way.
 */
export interface SyncRequest extends Sender {
  readonly kind: "sync";
  readonly vv: Digest;
  readonly window?: SeqRange;
}

/**
 * The receiver's version vector after applying a push, for the origins of the pushed entries
 * only: what the pusher needs to know what to push next. The rest it learns by anti-entropy.
 * `entries`, when present, are the receiver's own that the pusher lacks (a ride, pusher.ts):
 * they go with the answer instead of a push of their own, and the pusher's next push
 * acknowledges them.
 */
export interface DeltasReply extends Sender {
  readonly kind: "deltas-reply";
  readonly vv: Digest;
  readonly entries?: readonly Entry[];
}

/**
 * A page of what the caller lacks, and whether more pages follow. `diff` is the receiver's
 * vector as a difference from the request's (`digestDiff`): the caller patches the vector it
 * sent with it to learn the receiver's whole vector. Between converged nodes it is empty.
 */
export interface SyncReply extends Sender {
  readonly kind: "sync-reply";
  readonly entries: readonly Entry[];
  readonly diff: Digest;
  readonly more: boolean;
}

/**
 * Bootstrap of an empty node (snapshot.ts): asks for a consistent copy of the store, made only
 * if the receiver holds at least `minEntries` entries (the caller's threshold).
 */
export interface SnapshotBeginRequest extends Sender {
  readonly kind: "snapshot-begin";
  readonly minEntries: number;
}

/**
 * A snapshot ready to be read in chunks (`id` > 0), or none (`id` 0: the receiver holds fewer
 * entries than asked, or serves too many snapshots already). `vv` is what the copy covers.
 */
export interface SnapshotBeginReply extends Sender {
  readonly kind: "snapshot-begin-reply";
  readonly id: number;
  readonly bytes: number;
  /** Entries the copy holds (what its vector covers). */
  readonly entryCount: number;
  readonly vv: Digest;
}

/** The bytes of snapshot `id` from `offset` on (at most MAX_SNAPSHOT_CHUNK of them). */
export interface SnapshotChunkRequest extends Sender {
  readonly kind: "snapshot-chunk";
  readonly id: number;
  readonly offset: number;
}

export interface SnapshotChunkReply extends Sender {
  readonly kind: "snapshot-chunk-reply";
  readonly id: number;
  readonly offset: number;
  readonly data: Buffer;
}

/**
 * Asked once every chunk of snapshot `id` arrived: answered once the serving node has checked
 * its copy (off its event loop, while the chunks were read), which it then removes.
 */
export interface SnapshotEndRequest extends Sender {
  readonly kind: "snapshot-end";
  readonly id: number;
}

/**
 * The copy's checksum (SNAPSHOT_CHECKSUM over its `bytes` bytes) and what SQLite's quick_check
 * found wrong in it: `problem` is empty for a sound copy, else the first problems, cut to
 * MAX_PROBLEM_BYTES.
 */
export interface SnapshotEndReply extends Sender {
  readonly kind: "snapshot-end-reply";
  readonly id: number;
  readonly checksum: Buffer;
  readonly problem: string;
}

/** The requests the replication core answers (the replicator); snapshots are answered beside it. */
export type ReplicationRequest = DeltasRequest | SyncRequest;
export type SnapshotRequest = SnapshotBeginRequest | SnapshotChunkRequest | SnapshotEndRequest;
export type SnapshotReply = SnapshotBeginReply | SnapshotChunkReply | SnapshotEndReply;
export type PeerRequest = ReplicationRequest | SnapshotRequest;
export type PeerReply = DeltasReply | SyncReply | SnapshotReply;
export type PeerMessage = PeerRequest | PeerReply;
export type ReplyTo<R extends PeerRequest> = R extends DeltasRequest
  ? DeltasReply
  : R extends SyncRequest
    ? SyncReply
    : R extends SnapshotBeginRequest
      ? SnapshotBeginReply
      : R extends SnapshotChunkRequest
        ? SnapshotChunkReply
        : SnapshotEndReply;

const REPLY_KIND: Readonly<Record<PeerRequest["kind"], PeerReply["kind"]>> = {
  deltas: "deltas-reply",
  sync: "sync-reply",
  "snapshot-begin": "snapshot-begin-reply",
  "snapshot-chunk": "snapshot-chunk-reply",
  "snapshot-end": "snapshot-end-reply",
};

/** The kind of the reply to a request of `kind`. */
export function replyKindOf(kind: PeerRequest["kind"]): PeerReply["kind"] {
  return REPLY_KIND[kind];
}

/** Whether a message kind is a request's (the server end of a link decodes only those). */
export function isRequestKind(kind: PeerMessage["kind"]): kind is PeerRequest["kind"] {
  return kind in REPLY_KIND;
}

export function isSnapshotRequest(request: PeerRequest): request is SnapshotRequest {
  return (
    request.kind === "snapshot-begin" ||
    request.kind === "snapshot-chunk" ||
    request.kind === "snapshot-end"
  );
}

/** Bytes of a snapshot chunk at most: with its envelope well below a link frame (1 MiB). */
export const MAX_SNAPSHOT_CHUNK = 512 * 1024;
/** A snapshot's checksum: SHA-512/256 (store/snapshot.ts), 32 bytes. */
export const CHECKSUM_BYTES = 32;
/** What a snapshot-end reply says of a damaged copy, at most. */
export const MAX_PROBLEM_BYTES = 200;

export const MAX_PUSH_ENTRIES = 512;
export const MAX_PAGE_ENTRIES = 5000;
/**
 * Bytes of entries a page (a sync reply, or a push of what a peer lacks) holds at most, by
 * `entryBytes`: with its origin table and vector it stays well below a link frame (1 MiB,
 * link/frames.ts), which a page of 5000 entries of the largest likes (~2.7 MB) would not.
 */
export const MAX_PAGE_BYTES = 512 * 1024;

/** A message that failed its guard: rejected whole, with the reason. */
export class MalformedMessageError extends Error {
  override readonly name = "MalformedMessageError";
}

/** What the protocol answers from: the store's committed state, read-only. */
export type StoreState = Pick<Store, "digest" | "entries">;

/**
 * The answer to a push, once its entries are applied: our seqs of the origins it pushed (a ride
 * is added by the caller). An origin holds every one of its own seqs up to the highest it
 * sends, so `senderHolds` is what the push proves of the sender, with what it acknowledges.
 */
export function answerDeltas(
  self: Sender,
  request: DeltasRequest,
  store: StoreState,
): { reply: DeltasReply; senderHolds: Digest | undefined } {
  let own = 0;
  for (const e of request.entries) if (e.origin === request.origin && e.seq > own) own = e.seq;
  const have = store.digest();
  const vv = new Map<OriginId, number>();
  for (const { origin } of request.entries)
    if (!vv.has(origin)) vv.set(origin, have.get(origin) ?? 0);
  const holds = new Map(request.acks);
  if (own > 0) holds.set(request.origin, own);
  return {
    reply: { kind: "deltas-reply", ...self, vv },
    senderHolds: holds.size > 0 ? holds : undefined,
  };
}

/**
 * The answer to a sync: one page of what the caller lacks (of its window, when it names one),
 * and our vector as a difference. With a window, `more` says that the page stopped before the
 * window's end (at the byte bound): what lies beyond the window the caller asks for itself.
 */
export function answerSync(self: Sender, request: SyncRequest, store: StoreState): SyncReply {
  const have = store.digest();
  const w = request.window;
  const ranges = w
    ? [{ origin: w.origin, after: w.after, upTo: Math.min(w.upTo, have.get(w.origin) ?? 0) }]
    : missingRanges(have, request.vv);
  const { entries, more } = page(store, ranges, MAX_PAGE_ENTRIES);
  return { kind: "sync-reply", ...self, entries, diff: digestDiff(have, request.vv), more };
}

/** Up to `limit` entries (and MAX_PAGE_BYTES) that `store` holds and a peer holding `theirs` lacks. */
export function missingEntries(store: StoreState, theirs: Digest, limit: number): Entry[] {
  return page(store, missingRanges(store.digest(), theirs), limit).entries;
}

/** An upper bound of an entry's size in the binary codec: flags, seq, Δts, fields, traceparent. */
export function entryBytes(e: Entry): number {
  return (
    21 +
    Buffer.byteLength(e.post) +
    Buffer.byteLength(e.user) +
    (e.traceparent === undefined ? 0 : 25)
  );
}

/**
 * The entries of `ranges` (held ranges: every seq in them is stored), range by range: at most
 * `limit` entries and MAX_PAGE_BYTES of them (one entry at least), and whether any were left out.
 */
function page(
  store: StoreState,
  ranges: readonly SeqRange[],
  limit: number,
): { entries: Entry[]; more: boolean } {
  const entries: Entry[] = [];
  let bytes = 0;
  for (const range of ranges) {
    if (range.upTo <= range.after) continue;
    const room = limit - entries.length;
    if (room <= 0) return { entries, more: true };
    const taken = store.entries(range, room);
    for (const e of taken) {
      bytes += entryBytes(e);
      if (bytes > MAX_PAGE_BYTES && entries.length > 0) return { entries, more: true };
      entries.push(e);
    }
    if (taken.length === room && range.after + room < range.upTo) return { entries, more: true };
  }
  return { entries, more: false };
}
