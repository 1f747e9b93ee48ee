// What a peer that holds the secret can make a node hold is bounded (replication/limits.ts):
// each refusal is an error answer "peer_limit" on its link that changes nothing, counted in
// likes_gossip_messages_total.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Entry, NodeName, OriginId, PostId, UserId } from "../../src/crdt/index.js";
import { TestCluster, clusterView } from "../support/cluster.js";
import { RawLink } from "../support/peer.js";
import { countOf } from "../support/process.js";

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

async function rejected(): Promise<number> {
  const text = await (await fetch(`${cluster.node(0).adminUrl}/metrics`)).text();
  const line = /^likes_gossip_messages_total\{kind="deltas",result="rejected"\} (\d+)/m.exec(text);
  return Number(line?.[1] ?? 0);
}

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
