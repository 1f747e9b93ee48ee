// The store tests' likes and entries: a node name, branded ids, a local like, and a peer's entry.
import type { Entry, NodeName, OriginId, PostId, UserId } from "../../src/crdt/index.js";

export const NODE = "n1" as NodeName;
export const post = (s: string) => s as PostId;
export const user = (s: string) => s as UserId;
export const like = (p: string, u: string) => ({ post: post(p), user: user(u) });

export const remote = (seq: number, p: string, u: string, origin = "n2~abc"): Entry => ({
  origin: origin as OriginId,
  seq,
  post: post(p),
  user: user(u),
  ts: 1_700_000_000_000 + seq,
});

export function remoteEntry(seq: number): Entry {
  return remote(seq, "p", "u");
}
