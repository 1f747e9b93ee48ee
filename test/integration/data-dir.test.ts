// What a node does with its data directory when it is shared, corrupt, full or read-only: real
// processes, real file systems (a tmpfs mounted by the test for a full or read-only disk).
import { execFileSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { NodeName, OriginId, PostId, UserId } from "../../src/crdt/index.js";
import { SqliteStore } from "../../src/store/index.js";
import { NodeProcess, countOf, postLike, runToExit } from "../support/process.js";
import { pageSizeOf, savedSeqsOf } from "../support/sqlite-file.js";
import { waitFor } from "../support/wait.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const dirs: string[] = [];
const mounts: string[] = [];
const nodes: NodeProcess[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.kill("SIGKILL")));
  for (const mount of mounts.splice(0)) execFileSync("umount", [mount]);
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "likes-datadir-"));
  dirs.push(dir);
  return dir;
}

const PORTS = { LIKES_HTTP_PORT: "0", LIKES_PEER_PORT: "0", LIKES_ADMIN_PORT: "0" };

async function start(dataDir: string, env: Record<string, string> = {}): Promise<NodeProcess> {
  const node = await NodeProcess.start({ ...PORTS, LIKES_DATA_DIR: dataDir, ...env });
  nodes.push(node);
  return node;
}

/** A node process that must exit by itself: its exit code, or a failure at the deadline. */
async function exitOf(dataDir: string, env: Record<string, string> = {}): Promise<NodeProcess> {
  const node = new NodeProcess({ ...PORTS, LIKES_DATA_DIR: dataDir, ...env });
  nodes.push(node);
  let code: number | null | undefined;
  void node.exited().then((c) => (code = c));
  await waitFor("the node to exit", () => code !== undefined, { timeoutMs: 15_000 });
  return node;
}

const ready = async (node: NodeProcess) => (await fetch(`${node.url}/readyz`)).status;

/** A tmpfs of `size` mounted at a new directory, unmounted after the test. */
function mountTmpfs(size: string, options = ""): string {
  const dir = tempDir();
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}${options}`, "tmpfs", dir]);
  mounts.push(dir);
  return dir;
}

const canMount = (() => {
  if (process.platform !== "linux" || process.getuid?.() !== 0) return false;
  try {
    const probe = mkdtempSync(join(tmpdir(), "likes-mount-probe-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe], { stdio: "ignore" });
    execFileSync("umount", [probe]);
    rmSync(probe, { recursive: true });
    return true;
  } catch {
    return false;
  }
})();

/** Fills a directory's file system: writes a file until the disk says it is full. */
function fill(dir: string): string {
  const file = join(dir, "filler");
  const fd = openSync(file, "w");
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as { code?: string }).code !== "ENOSPC") throw error;
  } finally {
    closeSync(fd);
  }
  return file;
}

/** A data directory holding `n` likes of one foreign origin, written through the store. */
async function seeded(n: number): Promise<string> {
  const dir = join(tempDir(), "data");
  const store = SqliteStore.open({ dataDir: dir, nodeName: "seeded" as NodeName, fsync: "normal" });
  for (let from = 0; from < n; from += 5000)
    await store.apply(
      Array.from({ length: Math.min(5000, n - from) }, (_, i) => ({
        origin: "writer~1" as OriginId,
        seq: from + i + 1,
        post: `post-${(from + i) % 50}` as PostId,
        user: `user-${from + i}` as UserId,
        ts: 1,
      })),
    );
  await store.close();
  return dir;
}

/** Overwrites pages of the database with random bytes: every other one in the middle, or all but the first. */
function corrupt(dataDir: string, pages: "middle" | "all"): void {
  const file = join(dataDir, "likes.db");
  const size = pageSizeOf(file);
  const count = Math.floor(statSync(file).size / size);
  const [from, to, step] =
    pages === "middle" ? [Math.floor(count / 4), (count * 3) / 4, 2] : [1, count, 1];
  const fd = openSync(file, "r+");
  for (let page = from; page < to; page += step)
    writeSync(fd, randomBytes(size), 0, size, page * size);
  closeSync(fd);
}

/** Reads every user of every seeded post, page by page, until an answer is not 200. */
async function sweep(url: string): Promise<Response | undefined> {
  for (let p = 0; p < 50; p++) {
    let cursor: string | null = "";
    while (cursor !== null) {
      const query = cursor === "" ? "" : `&cursor=${encodeURIComponent(cursor)}`;
      const res = await fetch(`${url}/likes?post=post-${p}&detail=true&limit=1000${query}`);
      if (res.status !== 200) return res;
      cursor = ((await res.json()) as { next: string | null }).next;
    }
  }
  return undefined;
}

describe("a data directory", () => {
  it("is refused to a second process, exit 2 naming it, and freed by a kill -9", async () => {
    const dir = tempDir();
    const first = await start(dir, { LIKES_NODE_NAME: "holder" });
    expect((await postLike(first.url, "p", "before")).status).toBe(201);

    const second = await exitOf(dir, { LIKES_NODE_NAME: "intruder" });
    expect(await second.exited()).toBe(2);
    expect(second.stderr.join("\n")).toContain(`the data directory ${dir} is in use`);
    // The holder was not disturbed.
    expect((await postLike(first.url, "p", "during")).status).toBe(201);

    await first.kill("SIGKILL");
    const restarted = await start(dir, { LIKES_NODE_NAME: "holder" });
    expect(await countOf(restarted.url, "p")).toBe(2);
  });

  it("found corrupt at start is refused with the recovery, or refilled when told", async () => {
    const dir = await seeded(100_000);
    corrupt(dir, "middle");
    const refused = await exitOf(dir, { LIKES_NODE_NAME: "n1" });
    expect(await refused.exited()).toBe(2);
    expect(refused.stderr.join("\n")).toMatch(
      /database in .* is corrupt.*move the directory aside/s,
    );

    const refilled = await start(dir, { LIKES_NODE_NAME: "n1", LIKES_ON_CORRUPTION: "refill" });
    expect(
      refilled.lines.some((l) => String(l.message).startsWith("corrupt database moved aside")),
    ).toBe(true);
    expect(await ready(refilled)).toBe(200);
    expect(await countOf(refilled.url, "post-1")).toBe(0);
    expect((await postLike(refilled.url, "post-1", "fresh")).status).toBe(201);
    const aside = readdirSync(dir).filter((name) => name.startsWith("corrupt-"));
    expect(aside).toHaveLength(1);
    expect(existsSync(join(dir, aside[0] as string, "likes.db"))).toBe(true);
  });

  // A node with a cluster secret first asks whether the directory holds no likes (a snapshot
  // could fill it): that look must leave it as found too.
  for (const [what, env] of [
    ["alone", {}],
    ["in a cluster", { LIKES_CLUSTER_SECRET: "0123456789abcdef0123" }],
  ] as const)
    it(`refused as corrupt at start (${what}), is left as found: the database and its log untouched`, async () => {
      const dir = await seeded(100_000);
      // A node killed with likes in its log (the write-ahead log is checkpointed only later).
      const node = await start(dir, { LIKES_NODE_NAME: "n1", ...env });
      for (let i = 0; i < 20; i++)
        expect((await postLike(node.url, "new", `u${i}`)).status).toBe(201);
      await node.kill("SIGKILL");
      const wal = join(dir, "likes.db-wal");
      expect(statSync(wal).size).toBeGreaterThan(0);
      corrupt(dir, "middle");
      const digest = (file: string) =>
        createHash("sha256").update(readFileSync(file)).digest("hex");
      const before = { db: digest(join(dir, "likes.db")), wal: digest(wal) };
      expect(await (await exitOf(dir, { LIKES_NODE_NAME: "n1", ...env })).exited()).toBe(2);
      expect({ db: digest(join(dir, "likes.db")), wal: digest(wal) }).toEqual(before);
    });

  it("found corrupt while running makes the node unready and answer 503, then refuses it at start", async () => {
    // Larger than SQLite's 16 MB page cache, so that reads go to the file.
    const dir = await seeded(400_000);
    const node = await start(dir, { LIKES_NODE_NAME: "n1" });
    expect(await ready(node)).toBe(200);
    corrupt(dir, "all");
    const answer = await waitFor("a read to meet the corruption", () => sweep(node.url));
    expect(answer.status).toBe(503);
    expect(((await answer.json()) as { error: { code: string } }).error.code).toBe(
      "storage_corrupt",
    );
    expect(await ready(node)).toBe(503);
    expect(node.lines.some((l) => l.message === "storage corrupt: the node serves no more")).toBe(
      true,
    );
    // Fatal for the store: even what was readable before is refused now.
    expect((await fetch(`${node.url}/likes?post=post-0`)).status).toBe(503);
    await node.kill("SIGKILL");
    expect(await (await exitOf(dir, { LIKES_NODE_NAME: "n1" })).exited()).toBe(2);
  });

  it("killed between the saves of its contiguous seqs reopens with every like and its vector", async () => {
    const dir = tempDir();
    // A store of the build takes 10,500 likes of a peer in commits of 7 and 20 of its own, and
    // is killed: no close writes the origins' contiguous seqs, which lag what it committed.
    const store = pathToFileURL(join(REPO, "dist/store/index.js")).href;
    const script = `
      const { SqliteStore } = await import(${JSON.stringify(store)});
      const store = SqliteStore.open({ dataDir: ${JSON.stringify(dir)}, nodeName: "n1", fsync: "normal" });
      let seq = 0;
      for (let c = 0; c < 1500; c++)
        await store.apply(Array.from({ length: 7 }, () => (seq++, {
          origin: "n2~abc", seq, post: "p" + (seq % 97), user: "u" + seq, ts: 1,
        })));
      for (let i = 0; i < 20; i++) await store.accept({ post: "own", user: "o" + i }, 1);
      process.stdout.write(JSON.stringify(Object.fromEntries(store.digest())));
      process.kill(process.pid, "SIGKILL");`;
    let digest = "";
    try {
      execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    } catch (error) {
      const { signal, stdout } = error as { signal: string | null; stdout: string };
      expect(signal).toBe("SIGKILL");
      digest = stdout;
    }
    const committed = JSON.parse(digest) as Record<string, number>;
    expect(committed["n2~abc"]).toBe(10_500);
    const own = Object.keys(committed).find((o) => o.startsWith("n1~"))!;
    expect(committed[own]).toBe(20);
    // What the file says is behind: the test is of the scan at open, not of saved rows.
    const saved = savedSeqsOf(join(dir, "likes.db"));
    expect(saved.get("n2~abc")).toBeLessThan(10_500);
    expect(saved.get(own)).toBeLessThan(20);

    const reopened = SqliteStore.open({
      dataDir: dir,
      nodeName: "n1" as NodeName,
      fsync: "normal",
    });
    try {
      expect(Object.fromEntries(reopened.digest())).toMatchObject(committed);
      expect(reopened.setSize()).toBe(10_520);
      expect(reopened.count("p0" as PostId)).toBe(108);
    } finally {
      await reopened.close();
    }
  });
});

describe.skipIf(!canMount)("a full or read-only disk (tmpfs mounted by the test)", () => {
  it("answers 503 storage_full with Retry-After, is unready, and recovers when space returns", async () => {
    const disk = mountTmpfs("16m");
    const dir = join(disk, "data");
    const node = await start(dir, { LIKES_NODE_NAME: "n1" });
    const filler = fill(disk);
    let full: Response | undefined;
    for (let i = 0; i < 20_000 && !full; i++) {
      const res = await postLike(node.url, `p${i % 10}`, `user-${i}-${"x".repeat(200)}`);
      if (res.status === 503) full = res;
      else expect(res.status).toBe(201);
    }
    expect(full?.headers.get("retry-after")).toBe("5");
    expect(((await full!.json()) as { error: { code: string } }).error.code).toBe("storage_full");
    expect(await ready(node)).toBe(503);
    expect(node.lines.some((l) => String(l.message).startsWith("storage full"))).toBe(true);
    const dbSize = statSync(join(dir, "likes.db")).size;

    rmSync(filler);
    await waitFor("the node to be ready again", async () => (await ready(node)) === 200);
    expect((await postLike(node.url, "after", "space")).status).toBe(201);
    // Background checkpoints resumed: the WAL is copied into the database again.
    await waitFor("a checkpoint", () => statSync(join(dir, "likes.db")).size > dbSize);
    expect(node.lines.some((l) => l.message === "storage writable again")).toBe(true);
  });

  it("refuses a start on a full disk and leaves nothing behind", async () => {
    const disk = mountTmpfs("1m");
    fill(disk);
    const dir = join(disk, "data");
    const node = await exitOf(dir, { LIKES_NODE_NAME: "n1" });
    expect(await node.exited()).toBe(2);
    expect(node.stderr.join("\n")).toContain(dir);
    expect(existsSync(dir)).toBe(false);

    mkdirSync(dir);
    writeFileSync(join(dir, "keep"), "");
    expect(await (await exitOf(dir, { LIKES_NODE_NAME: "n1" })).exited()).toBe(2);
    expect(readdirSync(dir)).toEqual(["keep"]);
  });

  it("names the path and the cause when the data directory is read-only", async () => {
    const disk = mountTmpfs("1m");
    mkdirSync(join(disk, "data"));
    execFileSync("mount", ["-o", "remount,ro", disk]);
    const { code, stderr } = await runToExit({ ...PORTS, LIKES_DATA_DIR: join(disk, "data") });
    expect(code).toBe(2);
    expect(stderr).toContain(join(disk, "data"));
    expect(stderr).toMatch(/read-only file system/i);
  });
});
