// Snapshot bootstrap with real processes: an empty node joins a node that holds many likes by
// installing a snapshot of its store, keeps its own origin and goes on by anti-entropy; none is
// taken below the threshold or into a directory holding likes; the bootstrap is traced.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { clusterView } from "../support/cluster.js";
import { OtlpReceiver, SPAN_KIND } from "../support/otlp-receiver.js";
import { type NodeProcess, countOf, postLike } from "../support/process.js";
import { SEED_ORIGIN, SnapshotPeer, seedDataDir } from "../support/snapshot-peer.js";
import { waitFor } from "../support/wait.js";
import { LIKES, cleanUp, filesOf, freshRoot, running, start } from "./snapshot-harness.js";
import { metricSum } from "../support/metrics.js";

let fake: SnapshotPeer | undefined;
let receiver: OtlpReceiver | undefined;

afterEach(async () => {
  await receiver?.close();
  receiver = undefined;
  await cleanUp(fake);
  fake = undefined;
});

describe("snapshot bootstrap", () => {
  it("installs a peer's snapshot into an empty node, which keeps its own origin and catches up the rest", async () => {
    const dir = freshRoot();
    await seedDataDir(join(dir, "a"), LIKES);
    const a = await start({ LIKES_NODE_NAME: "nodeA", LIKES_DATA_DIR: join(dir, "a") });
    const aOrigin = (await clusterView(a.adminUrl)).origin;
    // Likes keep arriving at A while B copies its store and installs it.
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) {
        if ((await postLike(a.url, "meanwhile", `w-${written}`)).status === 201) written++;
      }
    })();
    const b = await start({
      LIKES_NODE_NAME: "nodeB",
      LIKES_DATA_DIR: join(dir, "b"),
      LIKES_PEERS: `127.0.0.1:${a.ports?.peer}`,
    });
    writing = false;
    await writer;
    expect(written).toBeGreaterThan(0);
    await waitFor(
      "B to hold every like written to A meanwhile",
      async () => (await countOf(b.url, "meanwhile")) === written,
    );
    // Listening means installed: every seeded like is held at once, by snapshot.
    const view = await clusterView(b.adminUrl);
    expect(view.vv[SEED_ORIGIN]).toBe(LIKES);
    expect(await countOf(b.url, "post-7")).toBe(LIKES / 100);
    expect(
      await metricSum(b.adminUrl, "likes_snapshots_total", { role: "install", result: "ok" }),
    ).toBe(1);
    expect(
      await metricSum(b.adminUrl, "likes_snapshot_bytes_total", { direction: "in" }),
    ).toBeGreaterThan(0);
    expect(
      await metricSum(a.adminUrl, "likes_snapshots_total", { role: "serve", result: "ok" }),
    ).toBe(1);
    expect(
      b.lines.some((l) => l.message === "snapshot installed; catching up by anti-entropy"),
    ).toBe(true);
    // Its own origin: not the serving node's, not carried over from the snapshot's file.
    expect(view.origin.startsWith("nodeB~")).toBe(true);
    expect(view.origin).not.toBe(aOrigin);
    expect(
      b.lines.some(
        (l) =>
          l.message ===
          "the data directory was another node's: its likes are kept, new ones are this node's",
      ),
    ).toBe(false);
    expect((await fetch(`${b.url}/readyz`)).status).toBe(200);
    // What arrives afterwards, both ways, by the ordinary replication.
    expect((await postLike(a.url, "after", "u-a")).status).toBe(201);
    expect((await postLike(b.url, "after", "u-b")).status).toBe(201);
    for (const node of [a, b])
      await waitFor(
        `${node.url} to hold both new likes`,
        async () => (await countOf(node.url, "after")) === 2,
      );
    const bOwn = (await clusterView(a.adminUrl)).vv[view.origin];
    expect(bOwn).toBe(1);
    // The served copy is gone from the serving node's directory.
    await waitFor("the served copy to be removed", () =>
      filesOf(join(dir, "a")).every((name) => name.startsWith("likes.db")),
    );
  });

  it("starts empty and catches up by anti-entropy when no peer holds more than the threshold", async () => {
    const dir = freshRoot();
    await seedDataDir(join(dir, "a"), 2_000);
    const a = await start({ LIKES_NODE_NAME: "nodeA", LIKES_DATA_DIR: join(dir, "a") });
    const b = await start({
      LIKES_NODE_NAME: "nodeB",
      LIKES_DATA_DIR: join(dir, "b"),
      LIKES_PEERS: `127.0.0.1:${a.ports?.peer}`,
    });
    expect(await metricSum(b.adminUrl, "likes_snapshots_total", { role: "install" })).toBe(0);
    await waitFor(
      "the empty node to catch up",
      async () => (await clusterView(b.adminUrl)).vv[SEED_ORIGIN] === 2_000,
    );
  });

  it("takes a snapshot into a directory whose database holds no like, never into one that holds one", async () => {
    const dir = freshRoot();
    // Nodes that started before any peer could answer them: one never took a like, one did.
    const stopped = async (name: string, like: boolean) => {
      const node = await start({ LIKES_NODE_NAME: name, LIKES_DATA_DIR: join(dir, name) });
      if (like) expect((await postLike(node.url, "own", "u-own")).status).toBe(201);
      await node.kill("SIGTERM");
      running.splice(running.indexOf(node), 1);
      expect(existsSync(join(dir, name, "likes.db"))).toBe(true);
    };
    await stopped("nodeB", false);
    await stopped("nodeC", true);
    await seedDataDir(join(dir, "peer"), LIKES);
    fake = await SnapshotPeer.start(join(dir, "peer"));
    const restart = (name: string) =>
      start({ LIKES_NODE_NAME: name, LIKES_DATA_DIR: join(dir, name), LIKES_PEERS: fake!.address });
    const installs = (node: NodeProcess) =>
      metricSum(node.adminUrl, "likes_snapshots_total", { role: "install", result: "ok" });

    const b = await restart("nodeB");
    expect(await installs(b)).toBe(1);
    expect((await clusterView(b.adminUrl)).vv[SEED_ORIGIN]).toBe(LIKES);
    expect(
      b.lines.some(
        (l) =>
          l.message === "the data directory's database holds no likes: removed, as a new node's",
      ),
    ).toBe(true);

    const c = await restart("nodeC");
    expect(await installs(c)).toBe(0);
    expect(await countOf(c.url, "own")).toBe(1);
    expect(c.lines.some((l) => String(l.message).includes("holds no likes"))).toBe(false);
  });

  it("traces the bootstrap: one likes.snapshot span with the peer, bytes and entries", async () => {
    const dir = freshRoot();
    await seedDataDir(join(dir, "peer"), LIKES);
    fake = await SnapshotPeer.start(join(dir, "peer"));
    receiver = await OtlpReceiver.start();
    const b = await start({
      LIKES_NODE_NAME: "nodeB",
      LIKES_DATA_DIR: join(dir, "b"),
      LIKES_PEERS: fake.address,
      OTEL_SDK_DISABLED: "false",
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: "100",
    });
    const bytes = await metricSum(b.adminUrl, "likes_snapshot_bytes_total", { direction: "in" });
    const span = await waitFor("the snapshot's span", () =>
      receiver?.spans.find((s) => s.name === "likes.snapshot"),
    );
    expect(span.kind).toBe(SPAN_KIND.CLIENT);
    expect(span.parentSpanId).toBe("");
    expect(span.attributes).toMatchObject({
      "likes.peer": fake.address,
      "likes.snapshot.bytes": bytes,
      "likes.snapshot.entries": LIKES,
    });
    expect(receiver.spans.filter((s) => s.name === "likes.snapshot")).toHaveLength(1);
  });
});
