// A node whose clock is far from its peers' is refused by them (stale signatures): a silent
// partition unless the skew is shown. It is, on /cluster and as a metric, and logged once a
// minute per peer; the refusing side logs once a minute per address, not per request.
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { binaryCodec } from "../../src/replication/codec.js";
import type { NodeName, OriginId } from "../../src/crdt/index.js";
import { TEST_SECRET } from "../support/cluster.js";
import { NodeProcess } from "../support/process.js";
import { postToPeer } from "../support/peer.js";
import { waitFor } from "../support/wait.js";

const AHEAD_MS = 60_000;
const cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function node(env: Record<string, string>): Promise<NodeProcess> {
  const dir = mkdtempSync(join(tmpdir(), "likes-skew-"));
  const started = await NodeProcess.start({
    LIKES_NODE_NAME: "local",
    LIKES_HTTP_PORT: "0",
    LIKES_ADMIN_PORT: "0",
    LIKES_PEER_PORT: "0",
    LIKES_CLUSTER_SECRET: TEST_SECRET,
    LIKES_DATA_DIR: dir,
    ...env,
  });
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanup.push(() => started.kill("SIGKILL"));
  return started;
}

describe("clock skew between peers", () => {
  it("is shown on /cluster and as a metric, and logged once, when a peer's clock is a minute ahead", async () => {
    // A peer whose clock is 60 s ahead refuses every request as stale, as a real one would.
    let requests = 0;
    const peer = http.createServer((req, res) => {
      requests++;
      req.resume();
      res.setHeader("date", new Date(Date.now() + AHEAD_MS).toUTCString());
      res.writeHead(401, { "content-type": "application/json" });
      res.end('{"error":{"code":"unauthorized","message":"request refused: stale"}}');
    });
    await new Promise<void>((resolve) => peer.listen(0, "127.0.0.1", resolve));
    cleanup.push(() => new Promise((resolve) => peer.close(resolve)));
    const address = `127.0.0.1:${(peer.address() as AddressInfo).port}`;
    const local = await node({ LIKES_PEERS: address });
    const skew = await waitFor("the skew on /cluster", async () => {
      const view = (await (await fetch(`${local.adminUrl}/cluster`)).json()) as {
        peers: { clockSkewMs: number | null }[];
      };
      return view.peers[0]?.clockSkewMs ?? undefined;
    });
    expect(Math.abs(skew - AHEAD_MS)).toBeLessThan(1500);
    const metrics = await (await fetch(`${local.adminUrl}/metrics`)).text();
    const gauge = new RegExp(`^likes_peer_clock_skew_seconds\\{peer="${address}"\\} (\\S+)$`, "m");
    expect(Math.abs(Number(gauge.exec(metrics)?.[1]) - AHEAD_MS / 1000)).toBeLessThan(1.5);
    // The node retries with backoff; however many answers, one line a minute says it.
    const seen = requests;
    await waitFor("three more answers from the skewed peer", () => requests >= seen + 3, {
      timeoutMs: 10_000,
    });
    expect(local.lines.filter((l) => l.message === "peer clock skew")).toHaveLength(1);
  });

  it("is refused, by the node whose clock it disagrees with, with one log line a minute", async () => {
    const local = await node({});
    const path = "/peer/v2/sync";
    const body = binaryCodec.encode({
      kind: "sync",
      node: "ahead" as NodeName,
      origin: "ahead~1" as OriginId,
      vv: new Map(),
    });
    const send = async () =>
      (await postToPeer(local.ports?.peer, path, body, { skewMs: AHEAD_MS })).status;
    for (let i = 0; i < 30; i++) expect(await send()).toBe(401);
    await waitFor("the refusal's log line", () =>
      local.lines.some((l) => l.message === "peer request refused"),
    );
    expect(local.lines.filter((l) => l.message === "peer request refused")).toHaveLength(1);
  });
});
