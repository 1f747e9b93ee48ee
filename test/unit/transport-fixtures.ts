// What the transport tests send, the secret their peer links hold, and their peer "b" serving
// on 127.0.0.1: shared by the contract suite (transport-contract.test.ts) and the peer link's
// own tests (peer-link.test.ts).
import type { Entry, NodeName, OriginId, PostId, UserId } from "../../src/crdt/index.js";
import { LinkServer, type LinkServerDeps } from "../../src/link/server.js";
import { binaryCodec } from "../../src/replication/codec.js";
import type { PeerReply } from "../../src/replication/protocol.js";
import { noMetrics, silentLogger } from "../../src/telemetry/types.js";

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

/** Peer b's answer to a push. */
export const deltasReply = (): PeerReply => ({
  kind: "deltas-reply",
  node: "b" as NodeName,
  origin: "b~2" as OriginId,
  vv: new Map(),
});

/** Peer b, listening on a free port of 127.0.0.1: it answers pushes unless `deps` says else. */
export async function startPeerB(
  deps: Partial<LinkServerDeps> = {},
): Promise<{ server: LinkServer; port: number; peer: string }> {
  const server = new LinkServer({
    secret: SECRET,
    node: "b",
    codec: binaryCodec,
    handle: () => Promise.resolve(deltasReply()),
    logger: silentLogger,
    metrics: noMetrics,
    ...deps,
  });
  const port = await server.listen(0, "127.0.0.1");
  return { server, port, peer: `127.0.0.1:${port}` };
}
