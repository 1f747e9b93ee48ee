// Faults of the peer link (protocol v7) between real node processes on 127.0.0.1: a link cut
// and healed by a TCP proxy, a peer killed while likes stream in, and a peer that completes the
// handshake and then never reads again.
import { mkdtempSync, rmSync } from "node:fs";
import net, { type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MAX_FIELD_BYTES } from "../../src/crdt/index.js";
import { MAX_UNANSWERED_BYTES } from "../../src/link/client.js";
import { FrameReader, plainFrame } from "../../src/link/frames.js";
import {
  MAX_HANDSHAKE_FRAME,
  decodeGreeting,
  encodeAnswer,
  freshNonce,
  proofOf,
  proves,
} from "../../src/link/handshake.js";
import { TEST_SECRET, TestCluster } from "../support/cluster.js";
import { NodeProcess, countOf, postLike } from "../support/process.js";
import { metricSample, sampleSum } from "../support/metrics.js";
import { waitFor } from "../support/wait.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function cluster(size: number): Promise<TestCluster> {
  const c = await TestCluster.start(size);
  cleanups.push(() => c.stop());
  return c;
}

/** A node's sample of `name{peer="..."}`, or of `name` alone; undefined if absent. */
function metric(node: NodeProcess, name: string, peer?: string): Promise<number | undefined> {
  return metricSample(node.adminUrl, name, peer === undefined ? {} : { peer });
}

const sampleOf = (text: string, name: string, peer?: string) =>
  sampleSum(text, name, peer === undefined ? {} : { peer });

/** Waits until a node's gauge for a peer reads `value`. */
async function gaugeIs(
  node: NodeProcess,
  name: string,
  peer: string,
  value: number,
  timeoutMs = 10_000,
): Promise<void> {
  await waitFor(
    `${name}{peer="${peer}"} to be ${value}`,
    async () => (await metric(node, name, peer)) === value,
    { timeoutMs },
  );
}

/** Posts every like, 100 at a time; the statuses in order. */
async function postAll(url: string, likes: { post: string; user: string }[]): Promise<number[]> {
  const statuses: number[] = [];
  for (let at = 0; at < likes.length; at += 100)
    statuses.push(
      ...(await Promise.all(
        likes.slice(at, at + 100).map(async ({ post, user }) => {
          const res = await postLike(url, post, user);
          await res.arrayBuffer();
          return res.status;
        }),
      )),
    );
  return statuses;
}

/** Waits until every given node counts `expected` likes for `post`. */
async function converged(
  urls: string[],
  post: string,
  expected: number,
  timeoutMs = 10_000,
): Promise<void> {
  await waitFor(
    `${urls.length} nodes to count ${expected} for ${post}`,
    async () => (await Promise.all(urls.map((u) => countOf(u, post)))).every((n) => n === expected),
    { timeoutMs },
  );
}

/** Likes posted to one node without pause, a few at a time, until stopped. */
function stream(url: string, post: string, writers = 4) {
  let stopping = false;
  let next = 0;
  let accepted = 0;
  const refused: string[] = [];
  const write = async () => {
    while (!stopping) {
      const user = `u-${next++}`;
      try {
        const res = await postLike(url, post, user);
        await res.arrayBuffer();
        if (res.status === 201) accepted++;
        else refused.push(`${user}: ${res.status}`);
      } catch (error) {
        refused.push(`${user}: ${String(error)}`);
      }
    }
  };
  const done = Promise.all(Array.from({ length: writers }, write));
  return {
    get accepted() {
      return accepted;
    },
    refused,
    async stop(): Promise<number> {
      stopping = true;
      await done;
      return accepted;
    },
  };
}

/**
 * A peer that completes the handshake as a server, as a real node would, and then stops reading
 * its link forever: what it is sent fills the kernel's buffers and is never answered.
 */
class StalledPeer {
  /** Links that proved themselves (the client's proof checked) and were then left unread. */
  handshakes = 0;
  private readonly sockets = new Set<Socket>();
  private readonly server = net.createServer((socket) => this.accept(socket));

  static async start(): Promise<StalledPeer> {
    const peer = new StalledPeer();
    await new Promise<void>((resolve) => peer.server.listen(0, "127.0.0.1", resolve));
    return peer;
  }

  get address(): string {
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.on("error", () => socket.destroy());
    socket.on("close", () => this.sockets.delete(socket));
    const reader = new FrameReader(MAX_HANDSHAKE_FRAME);
    const serverNonce = freshNonce();
    let clientNonce: Buffer | undefined;
    const onData = (chunk: Buffer) => {
      reader.push(chunk);
      for (let body = reader.next(); body; body = reader.next()) {
        if (clientNonce === undefined) {
          clientNonce = Buffer.from(decodeGreeting(body, 0).nonce);
          const proof = proofOf(TEST_SECRET, "server", clientNonce, serverNonce);
          socket.write(plainFrame(encodeAnswer(serverNonce, proof, "stalled")));
          continue;
        }
        if (!proves(TEST_SECRET, "client", clientNonce, serverNonce, body)) {
          socket.destroy();
          return;
        }
        this.handshakes++;
        socket.off("data", onData);
        socket.pause();
        return;
      }
    };
    socket.on("data", onData);
  }
}

describe("peer link faults between real processes", () => {
  it("a link cut by a proxy: likes stay on their side, and all cross once it heals", async () => {
    // Each node reaches the other through its own TcpProxy (test/support/tcp-proxy.ts);
    // isolate() cuts both (every connection destroyed, new ones refused), heal() lets them be.
    const c = await cluster(2);
    const [a, b] = [c.node(0), c.node(1)];
    expect(await postAll(a.url, [{ post: "cut", user: "before" }])).toEqual([201]);
    await converged(c.urls, "cut", 1);
    // Both ends have exchanged with the other (its gauges are labelled by its name from then on).
    await gaugeIs(a, "likes_peer_up", "node2", 1);
    await gaugeIs(b, "likes_peer_up", "node1", 1);

    c.isolate(1);
    await gaugeIs(a, "likes_peer_up", "node2", 0, 5_000);
    await gaugeIs(b, "likes_peer_up", "node1", 0, 5_000);
    // Likes of the largest size, enough that what B lacks after the cut (~1.3 MB) takes more
    // than one link frame (1 MiB) to send.
    const large = (side: string, i: number) => ({
      post: `cut-${side}-${i % 4}-`.padEnd(MAX_FIELD_BYTES, "p"),
      user: `${side}-${i}-`.padEnd(MAX_FIELD_BYTES, "u"),
    });
    const onA = Array.from({ length: 2400 }, (_, i) => large("a", i));
    const onB = Array.from({ length: 20 }, (_, i) => large("b", i));
    const during = await Promise.all([postAll(a.url, onA), postAll(b.url, onB)]);
    expect(during.flat().filter((s) => s !== 201)).toEqual([]);
    // Each side has taken its likes and knows that the other lacks them; none crossed.
    await gaugeIs(a, "likes_replication_pending", "node2", 2400);
    await gaugeIs(b, "likes_replication_pending", "node1", 20);
    expect(await metric(a, "likes_set_size")).toBe(2401);
    expect(await metric(b, "likes_set_size")).toBe(21);
    expect(await metric(a, "likes_peer_up", "node2")).toBe(0);

    c.heal(1);
    // How fast is the benchmark's (heal after a partition); here, that it converges at all.
    await waitFor(
      "both nodes to hold all 2421 likes",
      async () =>
        (await metric(a, "likes_set_size")) === 2421 &&
        (await metric(b, "likes_set_size")) === 2421,
      { timeoutMs: 20_000 },
    );
    await gaugeIs(a, "likes_peer_up", "node2", 1, 10_000);
    await gaugeIs(b, "likes_peer_up", "node1", 1, 10_000);
    await gaugeIs(a, "likes_replication_pending", "node2", 0, 10_000);
    await gaugeIs(b, "likes_replication_pending", "node1", 0, 10_000);
    expect(await countOf(b.url, large("a", 0).post)).toBe(600);
  });

  it("a peer killed with SIGKILL mid-stream: the others converge, and it catches up on restart", async () => {
    const c = await cluster(3);
    const [a, b] = [c.node(0), c.node(1)];
    // Node1 has exchanged with both (its gauges are labelled by their names from then on).
    await gaugeIs(a, "likes_peer_up", "node2", 1);
    await gaugeIs(a, "likes_peer_up", "node3", 1);
    const likes = stream(a.url, "stream");
    cleanups.push(() => likes.stop().then(() => undefined));
    await waitFor("the stream to be under way", () => likes.accepted >= 50);

    await c.kill(2);
    const killedAt = likes.accepted;
    await gaugeIs(a, "likes_peer_up", "node3", 0, 5_000);
    expect(await metric(a, "likes_peer_up", "node2")).toBe(1);
    // A and B keep converging while C is gone, as the stream goes on.
    await waitFor("more likes after the kill", () => likes.accepted >= killedAt + 100);
    const reached = likes.accepted;
    await waitFor(
      `node2 to hold the ${reached} likes node1 had accepted`,
      async () => (await countOf(b.url, "stream")) >= reached,
      { timeoutMs: 5_000 },
    );

    await c.startNode(2);
    await gaugeIs(a, "likes_peer_up", "node3", 1, 5_000);
    await waitFor("more likes after the restart", () => likes.accepted >= reached + 100);
    const total = await likes.stop();
    expect(likes.refused).toEqual([]);
    await converged(c.urls, "stream", total, 10_000);
  });

  it("a peer that stops reading: the link's unanswered bytes stay bounded, other peers get everything", async () => {
    const root = mkdtempSync(join(tmpdir(), "likes-link-faults-"));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const stalled = await StalledPeer.start();
    cleanups.push(() => stalled.close());
    const node = (name: string, peers: string[]) =>
      NodeProcess.start({
        LIKES_NODE_NAME: name,
        LIKES_HTTP_PORT: "0",
        LIKES_ADMIN_PORT: "0",
        LIKES_PEER_PORT: "0",
        LIKES_PEERS: peers.join(","),
        LIKES_CLUSTER_SECRET: TEST_SECRET,
        LIKES_DATA_DIR: join(root, name),
      });
    const b = await node("nodeb", []);
    cleanups.push(() => b.kill("SIGKILL").then(() => undefined));
    const a = await node("nodea", [`127.0.0.1:${b.ports?.peer}`, stalled.address]);
    cleanups.push(() => a.kill("SIGKILL").then(() => undefined));
    await waitFor("node A to open a link to the stalled peer", () => stalled.handshakes >= 1);
    const rssAtStart = await metric(a, "process_resident_memory_bytes");

    // Sampled all along: the bound must hold at every moment, not only at the end.
    let sampling = true;
    let maxUnanswered = 0;
    let maxRss = 0;
    let samples = 0;
    const sampler = (async () => {
      while (sampling) {
        const text = await (await fetch(`${a.adminUrl}/metrics`)).text();
        const unanswered = sampleOf(text, "likes_peer_link_unanswered_bytes", stalled.address);
        if (unanswered === undefined) throw new Error("no unanswered-bytes gauge for the peer");
        maxUnanswered = Math.max(maxUnanswered, unanswered);
        maxRss = Math.max(maxRss, sampleOf(text, "process_resident_memory_bytes") ?? 0);
        samples++;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();
    sampler.catch(() => undefined); // awaited below; not unhandled if the test fails first
    cleanups.push(async () => {
      sampling = false;
      await sampler.catch(() => undefined);
    });

    // 3000 likes, one in four with a post and a user of the largest size (256 bytes each).
    const N = 3000;
    const likes = Array.from({ length: N }, (_, i) =>
      i % 4 === 0
        ? {
            post: `big-${i}-`.padEnd(MAX_FIELD_BYTES, "p"),
            user: `user-${i}-`.padEnd(MAX_FIELD_BYTES, "u"),
          }
        : { post: `post-${i % 10}`, user: `user-${i}` },
    );
    const statuses = await postAll(a.url, likes);
    expect(statuses.filter((s) => s !== 201)).toEqual([]);

    await waitFor(
      `node B to hold all ${N} likes`,
      async () => (await metric(b, "likes_set_size")) === N,
      { timeoutMs: 10_000 },
    );
    await gaugeIs(a, "likes_peer_up", stalled.address, 0, 10_000);
    expect(await metric(a, "likes_peer_up", "nodeb")).toBe(1);
    // post-3 gets every like numbered 3 mod 10 (odd, never one of the large ones).
    expect(await countOf(a.url, "post-3")).toBe(N / 10);
    sampling = false;
    await sampler;

    expect(samples).toBeGreaterThan(10);
    // The gauge did see the stalled link hold requests, and never past the bound.
    expect(maxUnanswered).toBeGreaterThan(0);
    expect(maxUnanswered).toBeLessThanOrEqual(MAX_UNANSWERED_BYTES);
    if (rssAtStart !== undefined) expect(maxRss - rssAtStart).toBeLessThan(128 * 1024 * 1024);
  });
});
