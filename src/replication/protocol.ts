import type { Digest, Entry, NodeName, OriginId } from "../crdt/index.js";

/** Who sent a message: replies and requests both say it, so each side learns the other's origin. */
export interface Sender {
  readonly node: NodeName;
  readonly origin: OriginId;
}

/** Push: entries the receiver may lack. */
export interface DeltasRequest extends Sender {
  readonly kind: "deltas";
  readonly entries: readonly Entry[];
}

/** Anti-entropy: the caller's version vector. */
export interface SyncRequest extends Sender {
  readonly kind: "sync";
  readonly vv: Digest;
}

/**
 * The receiver's version vector after applying a push, for the origins of the pushed entries
 * only: what the pusher needs to know what to push next. The rest it learns by anti-entropy.
 */
export interface DeltasReply extends Sender {
  readonly kind: "deltas-reply";
  readonly vv: Digest;
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

export type PeerRequest = DeltasRequest | SyncRequest;
export type PeerReply = DeltasReply | SyncReply;
export type PeerMessage = PeerRequest | PeerReply;
export type ReplyTo<R extends PeerRequest> = R extends DeltasRequest ? DeltasReply : SyncReply;

// v2: replies carry only what the requester needs (see DeltasReply, SyncReply).
export const PROTOCOL_PATHS = { deltas: "/peer/v2/deltas", sync: "/peer/v2/sync" } as const;
/** Paths of earlier protocol versions: a peer still speaking one gets a clear refusal. */
export const RETIRED_PATHS: readonly string[] = ["/peer/v1/deltas", "/peer/v1/sync"];
export const MAX_PUSH_ENTRIES = 512;
export const MAX_PAGE_ENTRIES = 5000;

/** A message that failed its guard: rejected whole, with the reason. */
export class MalformedMessageError extends Error {
  override readonly name = "MalformedMessageError";
}
