import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { NodeName, OriginId, PostId } from "../../src/crdt/index.js";
import { SqliteStore } from "../../src/store/index.js";
import { NodeProcess, countOf, postLike, runToExit } from "../support/process.js";

const dirs: string[] = [];
const nodes: NodeProcess[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.kill("SIGKILL")));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "likes-node-"));
  dirs.push(dir);
  return dir;
}

async function start(env: Record<string, string>): Promise<NodeProcess> {
  const node = await NodeProcess.start({
    LIKES_HTTP_PORT: "0",
    LIKES_PEER_PORT: "0",
    LIKES_ADMIN_PORT: "0",
    ...env,
  });
  nodes.push(node);
  return node;
}

describe("a node process", () => {
  it("keeps every acknowledged like across SIGKILL and never reuses a seq", async () => {
    const dir = dataDir();
    const env = { LIKES_NODE_NAME: "durable", LIKES_DATA_DIR: dir };
    const first = await start(env);
    const N = 300;
    const answers = await Promise.all(
      Array.from({ length: N }, (_, i) => postLike(first.url, `post-${i % 7}`, `user-${i}`)),
    );
    expect(answers.every((res) => res.status === 201)).toBe(true);
    const firstOrigin = ((await (await fetch(`${first.url}/`)).json()) as { origin: OriginId })
      .origin;
    await first.kill("SIGKILL");

    const second = await start(env);
    let total = 0;
    for (let p = 0; p < 7; p++) {
      const expected = Array.from({ length: N }, (_, i) => i).filter((i) => i % 7 === p).length;
      expect(await countOf(second.url, `post-${p}`)).toBe(expected);
      total += expected;
    }
    expect(total).toBe(N);
    expect((await postLike(second.url, "after-restart", "someone")).status).toBe(201);
    expect(await second.kill("SIGTERM")).toBe(0);

    const store = SqliteStore.open({
      dataDir: dir,
      nodeName: "durable" as NodeName,
      fsync: "normal",
    });
    try {
      // Every start is a new origin: the first life's seqs are all there, none made again.
      const secondOrigin = store.previousOrigin as OriginId;
      expect(secondOrigin).not.toBe(firstOrigin);
      expect(store.digest().get(firstOrigin)).toBe(N);
      expect(store.digest().get(secondOrigin)).toBe(1);
      const [last] = store.entries({ origin: secondOrigin, after: 0, upTo: 1 }, 1);
      expect(last).toMatchObject({ seq: 1, post: "after-restart" as PostId, user: "someone" });
    } finally {
      await store.close();
    }
  });

  it("finishes in-flight requests and exits 0 on SIGTERM", async () => {
    const dir = dataDir();
    const node = await start({ LIKES_NODE_NAME: "graceful", LIKES_DATA_DIR: dir });
    const inFlight = Array.from({ length: 50 }, (_, i) => postLike(node.url, "p", `u${i}`));
    // One answered first, so that the stop meets requests the node has taken, not none.
    await Promise.race(inFlight);
    const exit = node.kill("SIGTERM");
    const answers = await Promise.allSettled(inFlight);
    // 0 is within the node's own 5 s deadline: past it, the node exits 1 (main.ts).
    expect(await exit).toBe(0);
    // Every request either got its answer or was never accepted; none is left half-done. One
    // that reached an open connection after the stop began is refused, 503 shutting_down (README).
    const fulfilled = answers.flatMap((a) => (a.status === "fulfilled" ? [a.value] : []));
    const acknowledged = fulfilled.filter((res) => res.status === 201);
    expect(acknowledged.length).toBeGreaterThan(0);
    for (const res of fulfilled.filter((r) => r.status !== 201)) {
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("shutting_down");
    }
    expect(node.lines.some((l) => l.message === "stopped")).toBe(true);
    const again = await start({ LIKES_NODE_NAME: "graceful", LIKES_DATA_DIR: dir });
    expect(await countOf(again.url, "p")).toBe(acknowledged.length);
  });

  it("stops at start with one line naming a bad variable", async () => {
    for (const [name, value] of [
      ["LIKES_HTTP_PORT", "eighty"],
      ["LIKES_FSYNC", "sometimes"],
      ["LIKES_PEERS", "nohostport"],
      ["LIKES_NODE_NAME", "bad name"],
      ["LIKES_PUSH_MS", "-1"],
      ["LIKES_TRACES_PER_SECOND", "0"],
      ["LIKES_SNAPSHOT_THRESHOLD", "lots"],
      ["LOG_LEVEL", "loud"],
    ] as const) {
      const { code, stderr } = await runToExit({ [name]: value, LIKES_DATA_DIR: dataDir() });
      expect(code).not.toBe(0);
      const lines = stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(name);
    }
  });
});
