import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sign } from "../../src/replication/signing.js";
import { TEST_SECRET, TestCluster, clusterView } from "../support/cluster.js";
import { countOf } from "../support/process.js";

let cluster: TestCluster;
let peerUrl: string;
beforeAll(async () => {
  cluster = await TestCluster.start(1);
  peerUrl = `http://127.0.0.1:${cluster.node(0).ports?.peer}`;
});
afterAll(() => cluster.stop());

const entry = {
  origin: "intruder~abc",
  seq: 1,
  post: "target",
  user: "mallory",
  ts: 1_700_000_000_000,
};
const deltas = JSON.stringify({
  kind: "deltas",
  node: "intruder",
  origin: "intruder~abc",
  entries: [entry],
});

async function send(
  path: string,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${peerUrl}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  return { status: res.status, body: await res.json() };
}

function signed(
  path: string,
  body: string,
  { secret = TEST_SECRET, skewMs = 0 } = {},
): Record<string, string> {
  const timestamp = String(Date.now() + skewMs);
  return {
    "x-likes-timestamp": timestamp,
    "x-likes-signature": sign(secret, "POST", path, timestamp, Buffer.from(body)),
  };
}

async function unchanged(): Promise<void> {
  expect(await countOf(cluster.urls[0]!, "target")).toBe(0);
  expect((await clusterView(cluster.node(0).adminUrl)).vv).toEqual({});
}

describe("the peer port", () => {
  it("refuses unsigned, forged and stale requests with 401 and changes nothing", async () => {
    const path = "/peer/v2/deltas";
    const cases: Record<string, Record<string, string>> = {
      unsigned: {},
      "wrong secret": signed(path, deltas, { secret: "not-the-cluster-secret-at-all" }),
      "signed for another body": signed(path, deltas.replace("mallory", "eve")),
      "signed for another path": signed("/peer/v2/sync", deltas),
      "stale by 60 s": signed(path, deltas, { skewMs: -60_000 }),
      "from 60 s in the future": signed(path, deltas, { skewMs: 60_000 }),
      "garbage signature": { "x-likes-timestamp": String(Date.now()), "x-likes-signature": "zz" },
    };
    for (const [name, headers] of Object.entries(cases)) {
      const res = await send(path, deltas, headers);
      expect(res.status, name).toBe(401);
      expect(res.body).toMatchObject({ error: { code: "unauthorized" } });
    }
    await unchanged();
  });

  it("rejects signed but malformed messages with 400 and changes nothing", async () => {
    const bodies = [
      "{not json",
      JSON.stringify({ kind: "sync", node: "x", origin: "x~1", vv: {} }),
      JSON.stringify({ kind: "deltas", node: "x", origin: "x~1", entries: [{ ...entry, seq: 0 }] }),
      JSON.stringify({
        kind: "deltas",
        node: "x",
        origin: "x~1",
        entries: [entry, { ...entry, post: "" }],
      }),
      JSON.stringify({
        kind: "deltas",
        node: "x",
        origin: "x~1",
        entries: [{ ...entry, user: "a\u0000b" }],
      }),
      JSON.stringify({ kind: "deltas", node: "x", origin: "no-tilde", entries: [] }),
    ];
    for (const body of bodies) {
      const res = await send("/peer/v2/deltas", body, signed("/peer/v2/deltas", body));
      expect(res.status, body).toBe(400);
    }
    const badSync = JSON.stringify({ kind: "sync", node: "x", origin: "x~1", vv: { "x~1": -1 } });
    expect((await send("/peer/v2/sync", badSync, signed("/peer/v2/sync", badSync))).status).toBe(
      400,
    );
    await unchanged();
  });

  it("tells a peer that speaks protocol v1 to upgrade, and changes nothing", async () => {
    const v1 = "/peer/v1/deltas";
    const res = await send(v1, deltas, signed(v1, deltas));
    expect(res.status).toBe(410);
    expect(res.body).toMatchObject({
      error: { code: "protocol_version_unsupported", message: expect.stringMatching(/v2/) },
    });
    await unchanged();
  });

  it("serves nothing but /peer/v2/*, and applies a correctly signed push", async () => {
    expect((await fetch(`${peerUrl}/like`, { method: "POST" })).status).toBe(404);
    expect((await fetch(`${peerUrl}/peer/v2/deltas`)).status).toBe(405);
    const res = await send("/peer/v2/deltas", deltas, signed("/peer/v2/deltas", deltas));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      kind: "deltas-reply",
      node: "node1",
      vv: { "intruder~abc": 1 },
    });
    expect(await countOf(cluster.urls[0]!, "target")).toBe(1);
  });
});
