// A data directory that is copied to another node or restored from a backup must lose no
// acknowledged like: every start is a new incarnation, so no dot is made twice.
import { cpSync, rmSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { TestCluster, clusterView } from "../support/cluster.js";
import { postLike } from "../support/process.js";
import { waitFor } from "../support/wait.js";

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

/** Posts likes of `post` by users `${prefix}-0…n-1` to one node; all must be acknowledged. */
async function post(url: string, postId: string, prefix: string, n: number): Promise<string[]> {
  const users = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
  const answers = await Promise.all(users.map((user) => postLike(url, postId, user)));
  expect(answers.map((a) => a.status)).toEqual(users.map(() => 201));
  return users;
}

/** Every acknowledged like, read back from every node: `detail=true` pages through all users. */
async function everyNodeHoldsAll(c: TestCluster, postId: string, users: string[]): Promise<void> {
  const want = [...users].sort();
  await waitFor(
    `every node to hold all ${users.length} acknowledged likes of ${postId}`,
    async () => {
      for (const url of c.urls) {
        const held: string[] = [];
        let cursor: string | null = null;
        do {
          const query = `post=${postId}&detail=true&limit=1000${cursor ? `&cursor=${cursor}` : ""}`;
          const page = (await (await fetch(`${url}/likes?${query}`)).json()) as {
            users: string[];
            next: string | null;
          };
          held.push(...page.users);
          cursor = page.next;
        } while (cursor);
        if (held.sort().join() !== want.join()) return false;
      }
      return true;
    },
    { timeoutMs: 20_000 },
  );
  // And the cluster says so: equal vectors, nothing pending.
  await waitFor("equal version vectors and nothing pending", async () => {
    const views = await Promise.all(
      c.members.map((_, i) =>
        fetch(`${c.node(i).adminUrl}/cluster`).then(
          (r) => r.json() as Promise<{ vv: Record<string, number>; peers: { pending: number }[] }>,
        ),
      ),
    );
    const vv = JSON.stringify(Object.entries(views[0]!.vv).sort());
    return views.every(
      (v) =>
        JSON.stringify(Object.entries(v.vv).sort()) === vv && v.peers.every((p) => p.pending === 0),
    );
  });
}

describe("a data directory that is copied or restored", () => {
  it("loses no like when one node's directory is copied and started as another node", async () => {
    cluster = await TestCluster.start(3);
    const users = await post(cluster.urls[0]!, "copied", "before", 50);
    await everyNodeHoldsAll(cluster, "copied", users);
    // node1's directory, copied while node1 is stopped, becomes node3's.
    await cluster.kill(0, "SIGTERM");
    await cluster.kill(2, "SIGTERM");
    rmSync(cluster.members[2]!.dataDir, { recursive: true, force: true });
    cpSync(cluster.members[0]!.dataDir, cluster.members[2]!.dataDir, { recursive: true });
    await cluster.startNode(0);
    await cluster.startNode(2);
    const one = await clusterView(cluster.node(0).adminUrl);
    const three = await clusterView(cluster.node(2).adminUrl);
    expect(three.origin).not.toBe(one.origin);
    expect(three.origin.startsWith("node3~")).toBe(true);
    users.push(...(await post(cluster.urls[0]!, "copied", "node1", 200)));
    users.push(...(await post(cluster.urls[2]!, "copied", "node3", 200)));
    await everyNodeHoldsAll(cluster, "copied", users);
  });

  it("loses no like when a node's directory is restored from an older backup", async () => {
    cluster = await TestCluster.start(3);
    const users = await post(cluster.urls[0]!, "restored", "before", 20);
    await everyNodeHoldsAll(cluster, "restored", users);
    await cluster.kill(0, "SIGTERM");
    const backup = `${cluster.members[0]!.dataDir}.backup`;
    cpSync(cluster.members[0]!.dataDir, backup, { recursive: true });
    await cluster.startNode(0);
    // Likes that only the peers will remember once the backup is restored.
    users.push(...(await post(cluster.urls[0]!, "restored", "after-backup", 50)));
    await everyNodeHoldsAll(cluster, "restored", users);
    await cluster.kill(0, "SIGTERM");
    rmSync(cluster.members[0]!.dataDir, { recursive: true, force: true });
    cpSync(backup, cluster.members[0]!.dataDir, { recursive: true });
    rmSync(backup, { recursive: true, force: true });
    await cluster.startNode(0);
    users.push(...(await post(cluster.urls[0]!, "restored", "after-restore", 50)));
    await everyNodeHoldsAll(cluster, "restored", users);
  });
});
