// What the transport tests send, and the secret their peer links hold: shared by the contract
// suite (transport-contract.test.ts) and the peer link's own tests (peer-link.test.ts).
import type { Entry, NodeName, OriginId, PostId, UserId } from "../../src/crdt/index.js";

export const SECRET = "transport-suite-secret-000";

export const entry: Entry = {
  origin: "a~1" as OriginId,
  seq: 1,
  post: "p" as PostId,
  user: "ü" as UserId,
  ts: 1_700_000_000_000,
  traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
};
export const sender = { node: "a" as NodeName, origin: "a~1" as OriginId };
