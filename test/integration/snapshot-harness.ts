// What the snapshot integration tests share: nodes started from dist/ with a low snapshot
// threshold, each test's own data root, a node's metrics and a data directory's files.
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TEST_SECRET } from "../support/cluster.js";
import { NodeProcess } from "../support/process.js";
import type { SnapshotPeer } from "../support/snapshot-peer.js";

export const LIKES = 50_000;
export const THRESHOLD = "10000";

let root: string;
export const running: NodeProcess[] = [];

/** Kills the nodes a test started, then stops its fake peer, then removes its data root. */
export async function cleanUp(fake: SnapshotPeer | undefined): Promise<void> {
  await Promise.all(running.splice(0).map((n) => n.kill("SIGKILL")));
  await fake?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
}

export function freshRoot(): string {
  root = mkdtempSync(join(tmpdir(), "likes-snapshot-"));
  return root;
}

export async function start(env: Record<string, string>): Promise<NodeProcess> {
  const node = await NodeProcess.start({
    LIKES_HTTP_PORT: "0",
    LIKES_ADMIN_PORT: "0",
    LIKES_PEER_PORT: "0",
    LIKES_CLUSTER_SECRET: TEST_SECRET,
    LIKES_SNAPSHOT_THRESHOLD: THRESHOLD,
    ...env,
  });
  running.push(node);
  return node;
}

/** The files a data directory holds besides the lock. */
export function filesOf(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => !name.startsWith("likes.lock"))
    .sort();
}
