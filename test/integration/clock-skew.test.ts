// Peer links authenticate without reading a clock (link/handshake.ts), so a node whose clock is
// far from its peers' is not refused by them. The skew still shifts every lag figure: the
// handshake's answer shows it, on /cluster and as a metric, logged once a minute per peer.
import { mkdtempSync, rmSync } from "node:fs";
import net, { type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { NodeName, OriginId, PostId, UserId } from "../../src/crdt/index.js";
import { FrameReader, plainFrame } from "../../src/link/frames.js";
import {
  MAX_HANDSHAKE_FRAME,
  decodeGreeting,
  encodeAnswer,
  freshNonce,
  proofOf,
  proves,
} from "../../src/link/handshake.js";
import { TEST_SECRET, clusterView } from "../support/cluster.js";
import { RawLink } from "../support/peer.js";
import { metricSum } from "../support/metrics.js";
import { NodeProcess, countOf } from "../support/process.js";
import { waitFor } from "../support/wait.js";

const AHEAD_MS = 60_000;
const cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function node(env: Record<string, string>): Promise<NodeProcess> {
  const dir = mkdtempSync(join(tmpdir(), "likes-skew-"));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const started = await NodeProcess.start({
    LIKES_NODE_NAME: "local",
    LIKES_HTTP_PORT: "0",
    LIKES_ADMIN_PORT: "0",
    LIKES_PEER_PORT: "0",
    LIKES_CLUSTER_SECRET: TEST_SECRET,
    LIKES_DATA_DIR: dir,
    ...env,
  });
  cleanup.push(() => started.kill("SIGKILL"));
  return started;
}

/**
 * A peer that holds the secret and whose clock is `aheadMs` ahead: it answers each hello as a
 * node would, checks the caller's proof, then closes the link, so that the caller opens it again
 * (and measures the skew again) as long as the test runs. `proved` counts the callers' proofs
 * that checked.
 */
async function skewedPeer(aheadMs: number): Promise<{ address: string; proved: () => number }> {
  let proved = 0;
  const sockets = new Set<Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    const reader = new FrameReader(MAX_HANDSHAKE_FRAME);
    const serverNonce = freshNonce();
    let clientNonce: Buffer | undefined;
    socket.on("data", (chunk: Buffer) => {
      try {
        reader.push(chunk);
        for (let body = reader.next(); body; body = reader.next()) {
          if (!clientNonce) {
            const hello = decodeGreeting(body, 0);
            clientNonce = Buffer.from(hello.nonce);
            const proof = proofOf(TEST_SECRET, "server", clientNonce, serverNonce);
            socket.write(
              plainFrame(encodeAnswer(serverNonce, proof, "ahead", Date.now() + aheadMs)),
            );
            continue;
          }
          if (proves(TEST_SECRET, "client", clientNonce, serverNonce, body)) proved++;
          socket.destroy();
          return;
        }
      } catch {
        socket.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanup.push(
    () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(resolve);
      }),
  );
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    proved: () => proved,
  };
}

describe("clock skew between peers", () => {
  it("is shown on /cluster and as a metric, and logged once, when a peer's clock is a minute ahead", async () => {
    const peer = await skewedPeer(AHEAD_MS);
    const local = await node({ LIKES_PEERS: peer.address });
    const skew = await waitFor("the skew on /cluster", async () => {
      const view = (await (await fetch(`${local.adminUrl}/cluster`)).json()) as {
        peers: { clockSkewMs: number | null }[];
      };
      return view.peers[0]?.clockSkewMs ?? undefined;
    });
    expect(Math.abs(skew - AHEAD_MS)).toBeLessThan(1500);
    const gauge = await metricSum(local.adminUrl, "likes_peer_clock_skew_seconds", {
      peer: peer.address,
    });
    expect(Math.abs(gauge - AHEAD_MS / 1000)).toBeLessThan(1.5);
    // The node proved itself, and reopens the link (with backoff) each time the peer closes it:
    // however many handshakes show the skew, one line a minute says it.
    const seen = peer.proved();
    await waitFor("three more handshakes with the skewed peer", () => peer.proved() >= seen + 3);
    expect(local.lines.filter((l) => l.message === "peer clock skew")).toEqual([
      expect.objectContaining({ address: peer.address, skewMs: expect.any(Number) }),
    ]);
  });

  it("does not refuse a peer whose hello claims a clock a minute ahead", async () => {
    const local = await node({});
    const link = await RawLink.open(local.ports?.peer, {
      node: "ahead",
      now: Date.now() + AHEAD_MS,
    });
    cleanup.push(() => link.close());
    const origin = "ahead~1" as OriginId;
    const answer = await link.request({
      kind: "deltas",
      node: "ahead" as NodeName,
      origin,
      entries: [{ origin, seq: 1, post: "skewed" as PostId, user: "u" as UserId, ts: Date.now() }],
    });
    expect(answer.type).toBe("reply");
    if (answer.type === "reply")
      expect(link.reply(answer.id)).toMatchObject({
        vv: new Map([[origin, 1]]),
      });
    expect(await countOf(local.url, "skewed")).toBe(1);
    expect((await clusterView(local.adminUrl)).vv).toHaveProperty(origin, 1);
    expect(local.lines.filter((l) => l.message === "peer link refused")).toEqual([]);
  });
});
