import {
  decodeDigest,
  encodeDigest,
  isEntry,
  isNodeName,
  isOriginId,
  type Digest,
  type Entry,
  type NodeName,
  type OriginId,
} from "../crdt/index.js";

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

/** Plain JSON shape of a message; digests travel as objects. */
export function toWire(message: PeerMessage): Record<string, unknown> {
  if ("vv" in message) return { ...message, vv: encodeDigest(message.vv) };
  if ("diff" in message) return { ...message, diff: encodeDigest(message.diff) };
  return { ...message };
}

/** Checks an untrusted value against the message union; throws MalformedMessageError. */
export function fromWire(value: unknown, expected: PeerMessage["kind"]): PeerMessage {
  if (typeof value !== "object" || value === null) throw new MalformedMessageError("not an object");
  const m = value as Record<string, unknown>;
  if (m.kind !== expected) throw new MalformedMessageError(`expected kind ${expected}`);
  if (typeof m.node !== "string" || !isNodeName(m.node))
    throw new MalformedMessageError("bad node");
  if (!isOriginId(m.origin)) throw new MalformedMessageError("bad origin");
  const sender = { node: m.node, origin: m.origin };
  const entries = (limit: number): Entry[] => {
    if (!Array.isArray(m.entries) || m.entries.length > limit)
      throw new MalformedMessageError(`entries must be an array of at most ${limit}`);
    const bad = m.entries.findIndex((e) => !isEntry(e));
    if (bad !== -1) throw new MalformedMessageError(`entry ${bad} is malformed`);
    return (m.entries as Entry[]).map(normalizeEntry);
  };
  const vv = (field: "vv" | "diff" = "vv"): Digest => {
    const digest = decodeDigest(m[field]);
    if (!digest) throw new MalformedMessageError("bad version vector");
    return digest;
  };
  switch (expected) {
    case "deltas":
      return { kind: "deltas", ...sender, entries: entries(MAX_PAGE_ENTRIES) };
    case "sync":
      return { kind: "sync", ...sender, vv: vv() };
    case "deltas-reply":
      return { kind: "deltas-reply", ...sender, vv: vv() };
    case "sync-reply":
      if (typeof m.more !== "boolean") throw new MalformedMessageError("more must be a boolean");
      return {
        kind: "sync-reply",
        ...sender,
        entries: entries(MAX_PAGE_ENTRIES),
        diff: vv("diff"),
        more: m.more,
      };
  }
}

/** Keeps only the fields of an entry, so that nothing extra from the wire is stored. */
function normalizeEntry(e: Entry): Entry {
  const { origin, seq, post, user, ts, traceparent } = e;
  return traceparent === undefined
    ? { origin, seq, post, user, ts }
    : { origin, seq, post, user, ts, traceparent };
}
