// Snapshot bootstrap with real processes, when it does not run to its end: a kill or a stop
// mid-snapshot, at either end, leaves nothing half-installed and the next start installs it
// whole; a damaged or cut snapshot is refused, and a peer gone mid-way leaves the node empty.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { TEST_SECRET, clusterView } from "../support/cluster.js";
import { NodeProcess, countOf } from "../support/process.js";
import { SEED_ORIGIN, SnapshotPeer, seedDataDir } from "../support/snapshot-peer.js";
import { RawLink } from "../support/peer.js";
import { waitFor } from "../support/wait.js";
import type { NodeName, OriginId } from "../../src/crdt/index.js";
import { MAX_SNAPSHOT_CHUNK } from "../../src/replication/protocol.js";
import {
  LIKES,
  THRESHOLD,
  cleanUp,
  filesOf,
  freshRoot,
  running,
  start,
} from "./snapshot-harness.js";
import { metricSum } from "../support/metrics.js";

let fake: SnapshotPeer | undefined;

afterEach(async () => {
  await cleanUp(fake);
  fake = undefined;
});

/**
 * Launches node B into `dataDir` with `peers`, waiting only until its public and admin ports are
 * open (before its bootstrap, which a test watches through them), not until it listens.
 */
async function launch(dataDir: string, peers: string) {
  const env = {
    LIKES_NODE_NAME: "nodeB",
    LIKES_DATA_DIR: dataDir,
    LIKES_HTTP_PORT: "0",
    LIKES_ADMIN_PORT: "0",
    LIKES_PEER_PORT: "0",
    LIKES_CLUSTER_SECRET: TEST_SECRET,
    LIKES_SNAPSHOT_THRESHOLD: THRESHOLD,
    LIKES_PEERS: peers,
  };
  const node = new NodeProcess(env);
  running.push(node);
  const open = await waitFor("B to open its ports", () =>
    node.lines.find((l) => l.message === "ports open; starting"),
  );
  return { env, http: Number(open.http), admin: Number(open.admin), node };
}

/**
 * A fake peer serving LIKES likes (seeded into `dir`/peer) that sends the first `sent` chunks of
 * a snapshot and holds back the rest until the returned release is called.
 */
async function holdingPeer(
  dir: string,
  sent: number,
): Promise<{ peer: SnapshotPeer; release: () => void }> {
  await seedDataDir(join(dir, "peer"), LIKES);
  const peer = (fake = await SnapshotPeer.start(join(dir, "peer")));
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  peer.hook = async (offset, data) => {
    if (offset >= sent * MAX_SNAPSHOT_CHUNK) await held;
    return data;
  };
  return { peer, release };
}

describe("snapshot bootstrap", () => {
  it("is not ready while installing, and a kill mid-snapshot leaves no database; the next start installs it whole", async () => {
    const dir = freshRoot();
    // The first two chunks go out; the rest wait until the test lets them.
    const { peer, release } = await holdingPeer(dir, 2);
    const { env, http, admin, node: first } = await launch(join(dir, "b"), peer.address);
    const reason = await waitFor("the node to say it is installing", async () => {
      const res = await fetch(`http://127.0.0.1:${http}/readyz`);
      if (res.status !== 503) return undefined;
      const body = (await res.json()) as { error: { message: string } };
      return /installing a snapshot from .*: \d+ of \d+ bytes/.test(body.error.message)
        ? body.error.message
        : undefined;
    });
    expect(reason).toContain(peer.address);
    expect((await fetch(`http://127.0.0.1:${http}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${http}/likes?post=post-1`)).status).toBe(503);
    expect(
      await metricSum(`http://127.0.0.1:${admin}`, "likes_snapshot_bytes_total", {
        direction: "in",
      }),
    ).toBe(2 * MAX_SNAPSHOT_CHUNK);
    await first.kill("SIGKILL");
    running.splice(running.indexOf(first), 1);
    // Half a download under its own name, never at the database's path.
    expect(filesOf(join(dir, "b"))).toEqual(["likes.db.snapshot"]);
    release();
    const second = await start(env);
    expect((await clusterView(second.adminUrl)).vv[SEED_ORIGIN]).toBe(LIKES);
    expect(await countOf(second.url, "post-99")).toBe(LIKES / 100);
    expect(filesOf(join(dir, "b")).filter((name) => name.includes("snapshot"))).toEqual([]);
  });

  it("stops cleanly on SIGTERM mid-snapshot: exit 0 at once, the download removed, the next start installs it whole", async () => {
    const dir = freshRoot();
    // The first chunk goes out; the rest wait until the test lets them.
    const { peer, release } = await holdingPeer(dir, 1);
    // A directory that exists already (an empty volume): the stop leaves it, without the download.
    mkdirSync(join(dir, "b"));
    const { env, admin, node: first } = await launch(join(dir, "b"), peer.address);
    await waitFor("the first chunk to be written", async () => {
      const res = await fetch(`http://127.0.0.1:${admin}/metrics`).catch(() => undefined);
      if (res?.status !== 200) return false;
      return (
        (await metricSum(`http://127.0.0.1:${admin}`, "likes_snapshot_bytes_total", {
          direction: "in",
        })) > 0
      );
    });
    const stopped = performance.now();
    expect(await first.kill("SIGTERM")).toBe(0);
    running.splice(running.indexOf(first), 1);
    // Not the shutdown deadline (5 s): the download's requests fail as its links close.
    expect(performance.now() - stopped).toBeLessThan(3000);
    expect(first.lines.map((l) => l.message)).toEqual(
      expect.arrayContaining([
        "shutting down while starting",
        "snapshot abandoned: the node is stopping",
      ]),
    );
    expect(filesOf(join(dir, "b"))).toEqual([]);
    release();
    const second = await start(env);
    expect((await clusterView(second.adminUrl)).vv[SEED_ORIGIN]).toBe(LIKES);
  });

  it("stops cleanly while serving a snapshot: its copy is removed, and the joining end's link closed", async () => {
    const dir = freshRoot();
    await seedDataDir(join(dir, "a"), LIKES);
    const a = await start({ LIKES_NODE_NAME: "nodeA", LIKES_DATA_DIR: join(dir, "a") });
    // A joining end that asks for a snapshot and reads none of it: A keeps its copy (until its
    // end is asked, 30 s of silence, or A stops), so the stop surely meets one being served.
    const joiner = await RawLink.open(a.ports?.peer);
    try {
      const begin = await joiner.request({
        kind: "snapshot-begin",
        node: "joiner" as NodeName,
        origin: "joiner~tmp1" as OriginId,
        minEntries: 1,
      });
      expect(begin.type).toBe("reply");
      expect(joiner.reply(begin.id)).toMatchObject({
        kind: "snapshot-begin-reply",
        bytes: expect.any(Number),
      });
      expect(
        filesOf(join(dir, "a")).filter((name) => name.startsWith("snapshot-out-")),
      ).toHaveLength(1);
      expect(await a.kill("SIGTERM")).toBe(0);
      running.splice(running.indexOf(a), 1);
      expect(filesOf(join(dir, "a")).filter((name) => name.includes("snapshot"))).toEqual([]);
      await joiner.closedByNode();
    } finally {
      joiner.close();
    }
  });

  it("refuses a snapshot whose bytes were damaged, and starts empty with nothing of it", async () => {
    const dir = freshRoot();
    await seedDataDir(join(dir, "peer"), LIKES);
    fake = await SnapshotPeer.start(join(dir, "peer"));
    fake.hook = (offset, data) => {
      if (offset !== MAX_SNAPSHOT_CHUNK) return data;
      const damaged = Buffer.from(data);
      damaged[1000] = (damaged[1000] as number) ^ 0xff;
      return damaged;
    };
    const b = await start({
      LIKES_NODE_NAME: "nodeB",
      LIKES_DATA_DIR: join(dir, "b"),
      LIKES_PEERS: fake.address,
    });
    expect(
      await metricSum(b.adminUrl, "likes_snapshots_total", { role: "install", result: "refused" }),
    ).toBe(1);
    const refusal = b.lines.find((l) => l.message === "snapshot refused");
    expect(String(refusal?.error)).toContain("checksum mismatch");
    expect((await clusterView(b.adminUrl)).vv[SEED_ORIGIN]).toBeUndefined();
    expect(filesOf(join(dir, "b")).filter((name) => name.includes("snapshot"))).toEqual([]);
  });

  it("refuses a snapshot cut short", async () => {
    const dir = freshRoot();
    await seedDataDir(join(dir, "peer"), LIKES);
    fake = await SnapshotPeer.start(join(dir, "peer"));
    fake.hook = (offset, data) =>
      offset >= MAX_SNAPSHOT_CHUNK ? data.subarray(0, data.length - 1) : data;
    const b = await start({
      LIKES_NODE_NAME: "nodeB",
      LIKES_DATA_DIR: join(dir, "b"),
      LIKES_PEERS: fake.address,
    });
    expect(
      await metricSum(b.adminUrl, "likes_snapshots_total", { role: "install", result: "refused" }),
    ).toBe(1);
    expect((await clusterView(b.adminUrl)).vv[SEED_ORIGIN]).toBeUndefined();
    expect(existsSync(join(dir, "b", "likes.db.snapshot"))).toBe(false);
  });

  it("starts empty, with nothing of the snapshot left, when the serving peer goes away mid-snapshot", async () => {
    const dir = freshRoot();
    await seedDataDir(join(dir, "peer"), LIKES);
    const peer = (fake = await SnapshotPeer.start(join(dir, "peer")));
    let stopped: Promise<void> | undefined;
    peer.hook = (offset, data) => {
      if (offset < MAX_SNAPSHOT_CHUNK) return data;
      // The peer dies with chunks in flight: its links close, nothing more is answered.
      stopped ??= peer.stop();
      return new Promise<Buffer>(() => {});
    };
    const b = await start({
      LIKES_NODE_NAME: "nodeB",
      LIKES_DATA_DIR: join(dir, "b"),
      LIKES_PEERS: peer.address,
    });
    fake = undefined;
    await stopped;
    expect(
      await metricSum(b.adminUrl, "likes_snapshots_total", { role: "install", result: "failed" }),
    ).toBe(1);
    expect(b.lines.some((l) => l.message === "snapshot failed")).toBe(true);
    expect((await clusterView(b.adminUrl)).vv[SEED_ORIGIN]).toBeUndefined();
    expect((await fetch(`${b.url}/readyz`)).status).toBe(200);
    expect(filesOf(join(dir, "b")).filter((name) => name.includes("snapshot"))).toEqual([]);
  });
});
