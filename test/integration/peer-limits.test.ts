// What a peer that holds the secret can make a node hold is bounded (replication/limits.ts):
// each refusal is an error answer "peer_limit" on its link that changes nothing, counted in
// likes_gossip_messages_total.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Entry, NodeName, OriginId, PostId, UserId } from "../../src/crdt/index.js";
import { TestCluster, allUp, clusterView } from "../support/cluster.js";
import { RawLink } from "../support/peer.js";
import { countOf } from "../support/process.js";
import { metricSum } from "../support/metrics.js";
import { waitFor } from "../support/wait.js";

const MAX_ORIGINS = 20;
let cluster: TestCluster;
let link: RawLink;
beforeAll(async () => {
  cluster = await TestCluster.start(1, { LIKES_MAX_ORIGINS: String(MAX_ORIGINS) });
  link = await RawLink.open(cluster.node(0).ports?.peer);
});
afterAll(async () => {
  // The link is missing when beforeAll failed to open it: the node is stopped all the same.
  try {
    link.close();
  } finally {
    await cluster.stop();
  }
});

const sender = { node: "buggy" as NodeName, origin: "buggy~1" as OriginId };
const entry = (origin: string, seq: number, post: string, ts = Date.now()): Entry => ({
  origin: origin as OriginId,
  seq,
  post: post as PostId,
  user: `${origin}-${seq}` as UserId,
  ts,
});

/** Pushes on the link: "ok" when applied, else the code of the error that answered it. */
async function push(entries: Entry[]): Promise<{ ok: true } | { ok: false; code: string }> {
  const answer = await link.request({ kind: "deltas", ...sender, entries });
  if (answer.type === "error") return { ok: false, code: answer.code };
  expect(answer.type).toBe("reply");
  if (answer.type === "reply")
    expect(link.reply(answer.id)).toMatchObject({
      kind: "deltas-reply",
    });
  return { ok: true };
}

const rejected = (adminUrl = cluster.node(0).adminUrl): Promise<number> =>
  metricSum(adminUrl, "likes_gossip_messages_total", { kind: "deltas", result: "rejected" });

describe("limits on what a peer can make a node hold", () => {
  it("refuses, whole, a push that would take the node past LIKES_MAX_ORIGINS", async () => {
    const before = await rejected();
    const held = (await clusterView(cluster.node(0).adminUrl)).vv;
    const room = MAX_ORIGINS - Object.keys(held).length;
    const fits = Array.from({ length: room }, (_, i) => entry(`o${i}~1`, 1, "origins"));
    expect(await push(fits)).toEqual({ ok: true });
    expect(await countOf(cluster.urls[0]!, "origins")).toBe(room);
    const past = [entry("one-more~1", 1, "past"), entry("and-another~1", 1, "past")];
    expect(await push(past)).toEqual({ ok: false, code: "peer_limit" });
    expect(await countOf(cluster.urls[0]!, "past")).toBe(0);
    expect(Object.keys((await clusterView(cluster.node(0).adminUrl)).vv)).toHaveLength(MAX_ORIGINS);
    expect(await rejected()).toBe(before + 1);
    // What a dashboard shows of it: the origins held have reached the bound.
    const admin = cluster.node(0).adminUrl;
    expect(await metricSum(admin, "likes_origins")).toBe(MAX_ORIGINS);
    expect(await metricSum(admin, "likes_origins_max")).toBe(MAX_ORIGINS);
  });

  it("refuses entries far above the gap of their origin, so nothing is held that cannot replicate", async () => {
    const before = await rejected();
    expect(await push([entry("o0~1", 1_000_000, "gap")])).toEqual({
      ok: false,
      code: "peer_limit",
    });
    expect(await countOf(cluster.urls[0]!, "gap")).toBe(0);
    expect(await rejected()).toBe(before + 1);
  });

  it("refuses entries stamped over an hour ahead of the node's clock", async () => {
    const before = await rejected();
    const later = Date.now() + 2 * 60 * 60 * 1000;
    expect(await push([entry("o0~1", 2, "future", later)])).toEqual({
      ok: false,
      code: "peer_limit",
    });
    expect(await countOf(cluster.urls[0]!, "future")).toBe(0);
    expect(await rejected()).toBe(before + 1);
    // Within the hour is clock skew, and is held.
    expect(await push([entry("o0~1", 2, "future", Date.now() + 60_000)])).toEqual({ ok: true });
    expect(await countOf(cluster.urls[0]!, "future")).toBe(1);
  });
});

describe("a peer that refuses what a node sends it", () => {
  let pair: TestCluster | undefined;
  afterAll(() => pair?.stop());

  it("stays up, is retried with a backoff, and is logged once, not at each refusal", async () => {
    // node2 holds one origin at most, its own: every entry of node1 is past its limit, and
    // node1 refuses none of node2's.
    pair = await TestCluster.start(2, {}, (i): Record<string, string> =>
      i === 1 ? { LIKES_MAX_ORIGINS: "1" } : {},
    );
    await allUp(pair);
    const [node1, node2] = [pair.node(0), pair.node(1)];
    const like = (url: string, user: string) =>
      fetch(`${url}/like`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ post: "refused", user }),
      });
    const since = node1.lines.length;
    const logged = (message: string) =>
      node1.lines.slice(since).filter((l) => l.message === message);
    // node2's own origin first (an origin is held from its first like), then node1's.
    expect((await like(node2.url, "u2")).status).toBe(201);
    expect((await like(node1.url, "u1")).status).toBe(201);
    // What node2 refused: node1's push, then each retry.
    const refused = () => rejected(node2.adminUrl);
    await waitFor("node2 to refuse node1's push", async () => (await refused()) >= 1);
    const sent = await messages(node1.adminUrl);
    // The first retry comes within the backoff's first second; refused too. Meanwhile node2
    // takes likes of its own, which node1 takes: entries passing the other way end nothing.
    let n = 0;
    await waitFor(
      "a retry to be refused too",
      async () => {
        expect((await like(node2.url, `more-${n++}`)).status).toBe(201);
        return (await refused()) >= 2;
      },
      { timeoutMs: 5_000, intervalMs: 100 },
    );
    expect(logged("peer down")).toHaveLength(0);
    expect(logged("peer up")).toHaveLength(0);
    expect(logged("peer refuses")).toHaveLength(1);
    expect(logged("peer accepts again")).toHaveLength(0);
    const view = (await (await fetch(`${node1.adminUrl}/cluster`)).json()) as {
      peers: { up: boolean | null }[];
    };
    expect(view.peers.map((p) => p.up)).toEqual([true]);
    // Before, each refusal marked it down, the retry's sync brought it up, and the push went
    // again: hundreds of messages a second.
    expect((await messages(node1.adminUrl)) - sent).toBeLessThan(10);
  });
});

/** Requests a node sent its peers (ok or not). */
async function messages(adminUrl: string): Promise<number> {
  const sent = (result: string) => metricSum(adminUrl, "likes_gossip_messages_total", { result });
  return (await sent("ok")) + (await sent("error"));
}
