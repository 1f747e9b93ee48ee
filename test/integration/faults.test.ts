// Fault injection through the admin port (LIKES_FAULTS=enabled) between real node processes:
// each kind of fault is set over HTTP and shown to act (a cut node's count stops moving and
// heals after DELETE, a delay raises the replication lag, a pause leaves anti-entropy as the only
// path, drops are survived), no acknowledged like is lost, and without LIKES_FAULTS /faults is 404.
import { afterEach, describe, expect, it } from "vitest";
import { TestCluster, allUp } from "../support/cluster.js";
import { countOf, postLike, type NodeProcess } from "../support/process.js";
import { waitFor } from "../support/wait.js";
import { metricSum } from "../support/metrics.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function cluster(size: number, env: Record<string, string> = {}): Promise<TestCluster> {
  const c = await TestCluster.start(size, { LIKES_FAULTS: "enabled", ...env });
  cleanups.push(() => c.stop());
  return c;
}

function setFault(node: NodeProcess, peer: string, body: unknown): Promise<Response> {
  return fetch(`${node.adminUrl}/faults/${encodeURIComponent(peer)}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function putFault(node: NodeProcess, peer: string, body: unknown): Promise<void> {
  const res = await setFault(node, peer, body);
  expect(res.status, await res.clone().text()).toBe(200);
  await res.arrayBuffer();
}

async function clearFaults(node: NodeProcess): Promise<void> {
  const res = await fetch(`${node.adminUrl}/faults`, { method: "DELETE" });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

/** The sum of a node's samples of `name` whose labels include every one given. */
const metric = (node: NodeProcess, name: string, labels?: Record<string, string>) =>
  metricSum(node.adminUrl, name, labels);

/** Posts likes one after another on a node; the ones acknowledged (2xx). */
async function postMany(node: NodeProcess, post: string, n: number, from = 0): Promise<number> {
  let acked = 0;
  for (let i = from; i < from + n; i++) {
    const res = await postLike(node.url, post, `u${i}`);
    await res.arrayBuffer();
    if (res.ok) acked++;
  }
  return acked;
}

async function counts(nodes: NodeProcess[], post: string, expected: number): Promise<void> {
  await waitFor(
    `every node to count ${expected} likes of ${post}`,
    async () =>
      (await Promise.all(nodes.map((n) => countOf(n.url, post)))).every((c) => c === expected),
    { timeoutMs: 15_000 },
  );
}

describe("fault injection (LIKES_FAULTS=enabled)", () => {
  it("lists, validates and clears faults, and shows them as a gauge", async () => {
    const c = await cluster(2);
    const n1 = c.node(0);
    expect(await (await fetch(`${n1.adminUrl}/faults`)).json()).toEqual({ faults: [] });
    const bad = await setFault(n1, "node2", { drop: 2 });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("invalid_fault");
    const unknown = await setFault(n1, "node2", { cut: "both", extra: 1 });
    expect(unknown.status).toBe(400);
    const text = await fetch(`${n1.adminUrl}/faults/node2`, {
      method: "PUT",
      headers: { "content-type": "text/plain" },
      body: '{"cut":"both"}',
    });
    expect(text.status).toBe(415);
    expect((await fetch(`${n1.adminUrl}/faults`, { method: "POST" })).status).toBe(405);
    // A query parameter taken for an option: refused, nothing set.
    const query = await fetch(`${n1.adminUrl}/faults/node2?for=1s`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: '{"pause":"pushes"}',
    });
    expect(query.status).toBe(400);
    expect(((await query.json()) as { error: { code: string } }).error.code).toBe("invalid_query");
    expect(await (await fetch(`${n1.adminUrl}/faults`)).json()).toEqual({ faults: [] });
    await putFault(n1, "node2", { delay: { ms: 10, jitterMs: 5 }, for: "1m" });
    const listed = (await (await fetch(`${n1.adminUrl}/faults`)).json()) as {
      faults: { peer: string; kind: string; until: string | null }[];
    };
    expect(listed.faults).toMatchObject([{ peer: "node2", kind: "delay" }]);
    expect(listed.faults[0]?.until).not.toBeNull();
    expect(await metric(n1, "likes_fault_active", { peer: "node2", kind: "delay" })).toBe(1);
    await clearFaults(n1);
    expect(await (await fetch(`${n1.adminUrl}/faults`)).json()).toEqual({ faults: [] });
    expect(await metric(n1, "likes_fault_active")).toBe(0);
    expect(n1.lines.some((l) => l.message === "fault started")).toBe(true);
    expect(n1.lines.some((l) => l.message === "fault ended" && l.why === "cleared")).toBe(true);
    // A fault with "for" ends by itself, and says so.
    await putFault(n1, "*", { pause: "pushes", for: "300ms" });
    expect(await metric(n1, "likes_fault_active", { peer: "*", kind: "pause" })).toBe(1);
    await waitFor(
      "the fault to expire",
      async () => (await metric(n1, "likes_fault_active")) === 0,
    );
    expect(await (await fetch(`${n1.adminUrl}/faults`)).json()).toEqual({ faults: [] });
    const expired = n1.lines.find((l) => l.message === "fault ended" && l.why === "expired");
    expect(expired).toMatchObject({ peer: "*", kind: "pause" });
    expect(expired?.trace_id).toBeUndefined();
  });

  it("a cut node's count stops moving, and catches up after DELETE", async () => {
    const c = await cluster(3, { LIKES_SYNC_MS: "200" });
    const [n1, n2, n3] = (await allUp(c)) as [NodeProcess, NodeProcess, NodeProcess];
    await putFault(n3, "*", { cut: "both" });
    const errorsBefore = await metric(n3, "likes_gossip_messages_total", { result: "error" });
    const acked = await postMany(n1, "cut", 20);
    expect(acked).toBe(20);
    await waitFor("node2 to hold the likes", async () => (await countOf(n2.url, "cut")) === 20);
    // node3 has tried (and failed) to sync a few times since: had the cut leaked, it would hold them.
    await waitFor(
      "node3's syncs to fail",
      async () =>
        (await metric(n3, "likes_gossip_messages_total", { result: "error" })) >= errorsBefore + 3,
    );
    expect(await countOf(n3.url, "cut")).toBe(0);
    await clearFaults(n3);
    await counts([n1, n2, n3], "cut", 20);
  });

  it("a delay raises the replication lag of pushes", async () => {
    const c = await cluster(2);
    const [n1, n2] = (await allUp(c)) as [NodeProcess, NodeProcess];
    const labels = { origin: "node1", path: "push" };
    // node2 cannot open links to node1 either (a one-way cut): it cannot pull the likes by sync.
    await putFault(n1, "node2", { delay: { ms: 400, jitterMs: 50 }, cut: "in" });
    expect(await postMany(n1, "delay", 5)).toBe(5);
    await counts([n1, n2], "delay", 5);
    const pushed = await metric(n2, "likes_replication_lag_seconds_count", labels);
    expect(pushed).toBeGreaterThan(0);
    // Every push observation is past 0.25 s: none in the buckets up to it.
    expect(
      await metric(n2, "likes_replication_lag_seconds_bucket", { ...labels, le: "0.25" }),
    ).toBe(0);
    expect(
      (await metric(n2, "likes_replication_lag_seconds_sum", labels)) / pushed,
    ).toBeGreaterThanOrEqual(0.4);
  });

  it("paused pushes leave anti-entropy as the only path: likes still arrive, by sync", async () => {
    const c = await cluster(3, { LIKES_SYNC_MS: "200" });
    const [n1, n2, n3] = (await allUp(c)) as [NodeProcess, NodeProcess, NodeProcess];
    await putFault(n1, "*", { pause: "pushes" });
    const deltas = await metric(n1, "likes_gossip_messages_total", { kind: "deltas" });
    expect(await postMany(n1, "pause", 10)).toBe(10);
    await counts([n1, n2, n3], "pause", 10);
    expect(await metric(n1, "likes_gossip_messages_total", { kind: "deltas" })).toBe(deltas);
    const bySync =
      (await metric(n2, "likes_replication_lag_seconds_count", { origin: "node1", path: "sync" })) +
      (await metric(n3, "likes_replication_lag_seconds_count", { origin: "node1", path: "sync" }));
    expect(bySync).toBeGreaterThan(0);
    // Resumed: the next like is pushed again.
    await clearFaults(n1);
    expect(await postMany(n1, "pause", 1, 10)).toBe(1);
    await counts([n1, n2, n3], "pause", 11);
    await waitFor(
      "a push from node1",
      async () => (await metric(n1, "likes_gossip_messages_total", { kind: "deltas" })) > deltas,
    );
  });

  it("drops lose no acknowledged like", async () => {
    const c = await cluster(3, { LIKES_SYNC_MS: "200" });
    const [n1, n2, n3] = (await allUp(c)) as [NodeProcess, NodeProcess, NodeProcess];
    await putFault(n1, "*", { drop: 0.5 });
    await putFault(n2, "*", { drop: 0.5 });
    const acked = (await postMany(n1, "drop", 30)) + (await postMany(n2, "drop", 30, 30));
    expect(acked).toBe(60);
    // Messages were dropped (a dropped push or sync marks its peer down until a retry answers).
    const dropped = (l: { message?: unknown; error?: unknown }) =>
      l.message === "peer down" && String(l.error).includes("dropped by a fault");
    await waitFor("a dropped message to be logged", () =>
      [n1, n2].some((n) => n.lines.some(dropped)),
    );
    await counts([n1, n2, n3], "drop", 60);
  });
});

describe("fault injection off (LIKES_FAULTS unset)", () => {
  it("answers 404 on /faults and changes nothing", async () => {
    const c = await TestCluster.start(2);
    cleanups.push(() => c.stop());
    const [n1, n2] = [c.node(0), c.node(1)];
    expect((await fetch(`${n1.adminUrl}/faults`)).status).toBe(404);
    const put = await setFault(n1, "*", { cut: "both" });
    expect(put.status).toBe(404);
    expect(((await put.json()) as { error: { code: string } }).error.code).toBe("not_found");
    expect((await fetch(`${n1.adminUrl}/faults`, { method: "DELETE" })).status).toBe(404);
    expect(await postMany(n1, "off", 3)).toBe(3);
    await counts([n1, n2], "off", 3);
    expect(await metric(n1, "likes_fault_active")).toBe(0);
  });
});
