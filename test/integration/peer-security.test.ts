// The peer port (protocol v7) against callers that do not hold the cluster secret, and against
// ones that do but send what no honest peer would: every refusal closes the link or answers an
// error, and nothing of it is applied.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Entry, NodeName, OriginId, PostId, UserId } from "../../src/crdt/index.js";
import net from "node:net";
import { MAX_FRAME_BYTES } from "../../src/link/frames.js";
import { HANDSHAKE_TIMEOUT_MS } from "../../src/link/handshake.js";
import { binaryCodec } from "../../src/replication/codec.js";
import { TestCluster, clusterView } from "../support/cluster.js";
import { RawLink } from "../support/peer.js";
import { WireWriter } from "../../src/replication/wire.js";
import { countOf, type NodeProcess } from "../support/process.js";
import { metricSum } from "../support/metrics.js";
import { waitFor } from "../support/wait.js";

const counter = (node: NodeProcess, kind: string, result: string): Promise<number> =>
  metricSum(node.adminUrl, "likes_gossip_messages_total", { kind, result });

/**
 * An intruder of its own per test (origin, post): what one test sends, even the push it gets
 * applied, is invisible to the checks of another, so the tests pass in any order.
 */
function intruderFor(cluster: () => TestCluster, name: string) {
  const origin = `${name}~abc` as OriginId;
  const post = `target-${name}` as PostId;
  const entry: Entry = { origin, seq: 1, post, user: "mallory" as UserId, ts: 1_700_000_000_000 };
  const sender = { node: name as NodeName, origin };
  return {
    entry,
    sender,
    /** A push of `entries` (by default the intruder's one entry). */
    push: (...entries: Entry[]) => ({
      kind: "deltas" as const,
      ...sender,
      entries: entries.length > 0 ? entries : [entry],
    }),
    /** Nothing this intruder sent was applied. */
    unchanged: async (): Promise<void> => {
      const node = cluster().node(0);
      expect(await countOf(node.url, post)).toBe(0);
      for (let seq = 2; seq <= 3; seq++) expect(await countOf(node.url, `${post}-${seq}`)).toBe(0);
      expect((await clusterView(node.adminUrl)).vv).not.toHaveProperty(origin);
    },
  };
}

/** A link test's own end: closed after the test whatever happened. */
const opened: RawLink[] = [];
async function open(port: number | undefined, options?: Parameters<typeof RawLink.open>[1]) {
  const link = await RawLink.open(port, options);
  opened.push(link);
  return link;
}

describe("the peer port, to a caller without the secret", () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    // A node of its own: the refusal log it checks counts every refusal the node ever made.
    cluster = await TestCluster.start(1);
  });
  afterAll(async () => {
    for (const link of opened.splice(0)) link.close();
    await cluster.stop();
  });

  it("closes the link after a wrong proof, counts each, logs one line, and applies nothing", async () => {
    const node = cluster.node(0);
    const { push, unchanged } = intruderFor(() => cluster, "outsider");
    const before = await counter(node, "handshake", "rejected");
    const attempts = 10;
    for (let i = 0; i < attempts; i++) {
      // It cannot check the node's proof; it sends its own (wrong) one and a push behind it.
      const link = await open(node.ports?.peer, {
        secret: "not-the-cluster-secret-at-all",
        checkNode: false,
      });
      link.write(link.frame(push()).bytes);
      await link.closedByNode();
    }
    expect(await counter(node, "handshake", "rejected")).toBe(before + attempts);
    // A refusal of another reason logs its own line after those: once it is read, every line
    // the wrong proofs made has been read too.
    const v2 = await fetch(`http://127.0.0.1:${node.ports?.peer}/peer/v2/deltas`, {
      method: "POST",
      body: "{}",
    });
    expect(v2.status).toBe(410);
    await v2.arrayBuffer();
    const refused = () => node.lines.filter((l) => l.message === "peer link refused");
    await waitFor("the v2 refusal's line", () =>
      refused().some((l) => /HTTP/.test(String(l.reason))),
    );
    expect(refused().map((l) => l.reason)).toEqual([
      expect.stringMatching(/does not hold this cluster's secret/),
      expect.stringMatching(/HTTP/),
    ]);
    await unchanged();
  });
});

describe("the peer port, to a caller with the secret", () => {
  let cluster: TestCluster;
  let port: number | undefined;
  beforeAll(async () => {
    cluster = await TestCluster.start(1);
    port = cluster.node(0).ports?.peer;
  });
  afterAll(async () => {
    for (const link of opened.splice(0)) link.close();
    await cluster.stop();
  });
  const node = () => cluster.node(0);

  it("applies a correctly sealed push and answers it with the node's vector", async () => {
    const { push, entry } = intruderFor(() => cluster, "insider");
    const link = await open(port);
    const answer = await link.request(push());
    expect(answer.type).toBe("reply");
    if (answer.type !== "reply") return;
    expect(link.reply(answer.id)).toEqual({
      kind: "deltas-reply",
      node: "node1",
      origin: expect.stringMatching(/^node1~/),
      vv: new Map([[entry.origin, 1]]),
    });
    expect(await countOf(node().url, entry.post)).toBe(1);
    expect((await clusterView(node().adminUrl)).vv).toHaveProperty(entry.origin, 1);
  });

  it("closes the link on a frame whose payload or tag was altered, and applies nothing", async () => {
    const { push, unchanged } = intruderFor(() => cluster, "forger");
    const before = await counter(node(), "frame", "rejected");
    // The first byte of the payload (after the length), and the last byte of the tag.
    for (const at of [4, -1]) {
      const link = await open(port);
      const { bytes } = link.frame(push());
      const forged = Buffer.from(bytes);
      const i = at < 0 ? forged.length + at : at;
      forged[i] = (forged[i] as number) ^ 0x01;
      link.write(forged);
      await link.closedByNode();
    }
    expect(await counter(node(), "frame", "rejected")).toBe(before + 2);
    await unchanged();
  });

  it("applies a frame once and closes the link when it comes again", async () => {
    const { push, entry } = intruderFor(() => cluster, "replayer");
    const link = await open(port);
    const { id, bytes } = link.frame(push());
    link.write(bytes);
    expect((await link.answer(id)).type).toBe("reply");
    expect(await countOf(node().url, entry.post)).toBe(1);
    const before = await counter(node(), "frame", "rejected");
    link.write(bytes);
    await link.closedByNode();
    expect(await counter(node(), "frame", "rejected")).toBe(before + 1);
  });

  it("closes a link on a frame sealed for another link, and applies nothing", async () => {
    const { push, unchanged } = intruderFor(() => cluster, "crosser");
    const sealedFor = await open(port);
    const other = await open(port);
    other.write(sealedFor.frame(push()).bytes);
    await other.closedByNode();
    await unchanged();
  });

  it("closes the link on frames out of order, and applies neither", async () => {
    const { push, entry, unchanged } = intruderFor(() => cluster, "reorderer");
    const link = await open(port);
    const first = link.frame(push({ ...entry, seq: 2, post: `${entry.post}-2` as PostId }));
    const second = link.frame(push({ ...entry, seq: 3, post: `${entry.post}-3` as PostId }));
    link.write(second.bytes);
    link.write(first.bytes);
    await link.closedByNode();
    await unchanged();
  });

  it("closes the connection on a frame sent before the proof, and applies nothing", async () => {
    const { push, unchanged } = intruderFor(() => cluster, "early");
    // In the proof's place, and ahead of the proof in the same write.
    const instead = await open(port, { withholdProof: true });
    instead.write(instead.frame(push()).bytes);
    await instead.closedByNode();
    const ahead = await open(port, { withholdProof: true });
    ahead.write(Buffer.concat([ahead.frame(push()).bytes, ahead.withheldProof as Buffer]));
    await ahead.closedByNode();
    await unchanged();
  });

  it("tells a peer that speaks protocol v2 (HTTP) to upgrade, and applies nothing", async () => {
    const { push, unchanged } = intruderFor(() => cluster, "elder");
    const res = await fetch(`http://127.0.0.1:${port}/peer/v2/deltas`, {
      method: "POST",
      headers: { "content-type": binaryCodec.contentType },
      body: binaryCodec.encode(push()),
    });
    expect(res.status).toBe(410);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await res.json()).toMatchObject({
      error: {
        code: "protocol_version_unsupported",
        message: expect.stringMatching(/v7[\s\S]*upgraded/),
      },
    });
    await unchanged();
  });

  it("answers a malformed message under a valid tag with 'malformed', applies nothing, and keeps the link", async () => {
    const { push, entry, sender, unchanged } = intruderFor(() => cluster, "malformer");
    const cut = (bytes: Buffer) => bytes.subarray(0, bytes.length - 1);
    // Each built as it is sent, by the link (which names its sender once): a message malformed
    // after its names leaves the two ends' tables alike, and the link serves on.
    const messages: ((link: RawLink) => Buffer)[] = [
      () => Buffer.alloc(0),
      () => Buffer.from("{not a message"),
      () => Buffer.from(JSON.stringify(push())),
      (link) => link.encode({ kind: "deltas-reply", ...sender, vv: new Map() }),
      (link) => Buffer.concat([link.encode(push()), Buffer.of(0)]),
      (link) => cut(link.encode(push())),
      (link) => cut(link.encode({ kind: "sync", ...sender, vv: new Map() })),
      (link) => link.encode(push(entry, { ...entry, seq: 2, post: "" as PostId })),
      (link) => link.encode(push({ ...entry, user: "a\u0000b" as UserId })),
      (link) =>
        link.encode({
          kind: "deltas",
          node: "x" as NodeName,
          origin: "no-tilde" as OriginId,
          entries: [],
        }),
    ];
    const rejected = async () =>
      (await counter(node(), "deltas", "rejected")) + (await counter(node(), "sync", "rejected"));
    const before = await rejected();
    const link = await open(port);
    for (const build of messages) {
      const message = build(link);
      const answer = await link.request(message);
      expect(answer, message.toString("hex")).toMatchObject({ type: "error", code: "malformed" });
    }
    expect(await rejected()).toBe(before + messages.length);
    // The link is still open and answers a good request.
    const answer = await link.request({ kind: "sync", ...sender, vv: new Map() });
    expect(answer.type).toBe("reply");
    expect(link.closed).toBe(false);
    await unchanged();
  });

  it("closes the link on a frame longer than the limit, without waiting for its body", async () => {
    const { push, unchanged } = intruderFor(() => cluster, "bloater");
    const before = await counter(node(), "frame", "rejected");
    const link = await open(port);
    const header = new WireWriter();
    header.varint(MAX_FRAME_BYTES + 1);
    // Only the length and the start of a push go out: the node must not wait for the rest.
    const frame = link.frame(push()).bytes;
    const ownHead = frame.findIndex((b) => b < 0x80) + 1;
    link.write(Buffer.concat([header.finish(), frame.subarray(ownHead)]));
    await link.closedByNode();
    expect(await counter(node(), "frame", "rejected")).toBe(before + 1);
    await unchanged();
  });

  it("closes a connection that does not complete the handshake in time, and counts it; not one its caller closed", async () => {
    const connect = async () => {
      const socket = net.connect({ host: "127.0.0.1", port: port ?? 0 });
      socket.on("error", () => {});
      await new Promise((resolve) => socket.once("connect", resolve));
      return socket;
    };
    const before = await counter(node(), "handshake", "rejected");
    // One that hangs up at once: not a refusal, whenever its handshake would have run out.
    const gone = await connect();
    await new Promise((resolve) => gone.destroy().once("close", resolve));
    // One that stays and says nothing: refused when its time runs out, after the first's.
    const silent = await connect();
    let closed = false;
    silent.once("close", () => (closed = true));
    await waitFor("the node to close the silent connection", () => closed, {
      timeoutMs: HANDSHAKE_TIMEOUT_MS + 5_000,
    });
    expect(await counter(node(), "handshake", "rejected")).toBe(before + 1);
  });
});
