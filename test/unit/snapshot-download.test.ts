// Snapshot download: the copy a serving store makes and checks, and the joining end's checked
// download and its install.
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { NodeName } from "../../src/crdt/index.js";
import { MAX_SNAPSHOT_CHUNK } from "../../src/replication/protocol.js";
import { describeProblems } from "../../src/replication/snapshot-source.js";
import {
  SnapshotDownload,
  checkCopy,
  SnapshotRefusedError,
  SqliteStore,
  type StoreSnapshot,
} from "../../src/store/index.js";
import { PAGE_SIZE } from "../../src/store/sqlite-schema.js";
import { SEED_ORIGIN, seedDataDir } from "../support/snapshot-peer.js";
import { pageSizeOf } from "../support/sqlite-file.js";
import { sha } from "./snapshot-harness.js";

const dirs: string[] = [];
function dir(): string {
  const d = mkdtempSync(join(tmpdir(), "likes-snapshot-unit-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A snapshot of a seeded store, made as a serving node makes it. */
async function snapshotOf(
  likes: number,
  pageSize?: number,
): Promise<{ snapshot: StoreSnapshot; bytes: Buffer }> {
  const source = dir();
  await seedDataDir(source, likes, pageSize);
  const store = SqliteStore.open({
    dataDir: source,
    nodeName: "server" as NodeName,
    fsync: "normal",
  });
  try {
    const snapshot = await store.snapshot();
    return { snapshot, bytes: await snapshot.read(0, snapshot.bytes) };
  } finally {
    await store.close();
  }
}

async function download(target: string, bytes: Buffer) {
  const d = await SnapshotDownload.start(target, { bytes: bytes.length });
  for (let offset = 0; offset < bytes.length; offset += MAX_SNAPSHOT_CHUNK)
    await d.write(offset, bytes.subarray(offset, offset + MAX_SNAPSHOT_CHUNK));
  return d;
}

const leftovers = (d: string) => readdirSync(d).filter((name) => !name.startsWith("likes.lock"));

describe("snapshot download", () => {
  it.each([
    ["in this node's pages", undefined, false, {}, PAGE_SIZE],
    [
      "in 16 KiB pages (an earlier version's), rewritten in this node's",
      16_384,
      false,
      { repaged: { from: 16_384, to: PAGE_SIZE } },
      PAGE_SIZE,
    ],
    [
      "in 16 KiB pages that cannot be rewritten (something in the rewrite's way), as they are",
      16_384,
      true,
      { kept: { pageSize: 16_384, error: expect.stringMatching(/directory/) as unknown } },
      16_384,
    ],
  ] as const)(
    "installs a whole, checked copy %s that opens with every entry and a new origin of its own",
    async (_, pageSize, blocked, report, installedPageSize) => {
      const { snapshot, bytes } = await snapshotOf(20_000, pageSize);
      expect(bytes.readUInt16BE(16)).toBe(pageSize ?? PAGE_SIZE);
      expect(snapshot.entryCount).toBe(20_000);
      expect(snapshot.vv.get(SEED_ORIGIN)).toBe(20_000);
      expect(await snapshot.verdict).toEqual({ checksum: sha(bytes), problems: [] });
      await snapshot.remove();
      const target = dir();
      const downloaded = await download(target, bytes);
      // A directory where the rewrite goes: as a full disk would, it fails the rewrite alone.
      if (blocked) mkdirSync(join(target, "likes.db.snapshot-repaged", "x"), { recursive: true });
      expect(await downloaded.install(sha(bytes))).toEqual(report);
      expect(leftovers(target)).toEqual(["likes.db"]);
      expect(pageSizeOf(join(target, "likes.db"))).toBe(installedPageSize);
      const store = SqliteStore.open({
        dataDir: target,
        nodeName: "joiner" as NodeName,
        fsync: "normal",
      });
      try {
        expect(store.digest().get(SEED_ORIGIN)).toBe(20_000);
        expect(store.count("post-3" as never)).toBe(200);
        expect(store.setSize()).toBe(20_000);
        expect(store.origin.startsWith("joiner~")).toBe(true);
        // The serving node's identity did not travel with its likes.
        expect(store.previousOrigin).toBeUndefined();
      } finally {
        await store.close();
      }
    },
  );

  it("aborts a copy being made at its next step, leaving no file of it", async () => {
    const source = dir();
    // Large enough for the backup to take several steps of 100 pages.
    await seedDataDir(source, 20_000);
    const store = SqliteStore.open({
      dataDir: source,
      nodeName: "server" as NodeName,
      fsync: "normal",
    });
    try {
      const controller = new AbortController();
      const made = store.snapshot(controller.signal);
      controller.abort(new Error("stopping"));
      await expect(made).rejects.toThrow("stopping");
      expect(leftovers(source).filter((name) => name.includes("snapshot"))).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it("refuses chunks out of order or past the promised size, and a copy cut short", async () => {
    const { snapshot, bytes } = await snapshotOf(2_000);
    await snapshot.remove();
    const target = dir();
    const d = await SnapshotDownload.start(target, { bytes: bytes.length });
    await expect(d.write(10, bytes.subarray(10, 20))).rejects.toThrow(SnapshotRefusedError);
    await expect(d.write(0, Buffer.concat([bytes, Buffer.alloc(1)]))).rejects.toThrow(
      /past the snapshot/,
    );
    await d.write(0, bytes.subarray(0, bytes.length - 1));
    await expect(d.install(sha(bytes))).rejects.toThrow(/truncated/);
    expect(leftovers(target)).toEqual([]);
  });

  it("refuses bytes whose checksum differs from the peer's, and bytes that are not a database whatever their checksum", async () => {
    const { snapshot, bytes } = await snapshotOf(2_000);
    await snapshot.remove();
    const target = dir();
    const damaged = Buffer.from(bytes);
    damaged[damaged.length >> 1] = (damaged[damaged.length >> 1] as number) ^ 1;
    await expect((await download(target, damaged)).install(sha(bytes))).rejects.toThrow(
      /checksum mismatch/,
    );
    expect(leftovers(target)).toEqual([]);
    const noise = randomBytes(bytes.length);
    await expect((await download(target, noise)).install(sha(noise))).rejects.toThrow(
      SnapshotRefusedError,
    );
    expect(leftovers(target)).toEqual([]);
  });

  it("checks a served copy off the event loop: a sound one, one whose b-tree pages are damaged, and one that is no database", async () => {
    const { snapshot, bytes } = await snapshotOf(2_000);
    await snapshot.remove();
    const served = dir();
    // A database file whose header is sound but whose b-tree pages are not: quick_check finds it.
    const inner = Buffer.from(bytes);
    const size = inner.readUInt16BE(16);
    for (let page = 1; page * size < inner.length; page++)
      inner.fill(0xee, page * size, page * size + 12);
    const noise = randomBytes(bytes.length);
    for (const [name, content] of [
      ["sound.db", bytes],
      ["inner.db", inner],
      ["noise.db", noise],
    ] as const) {
      writeFileSync(join(served, name), content);
      const verdict = await checkCopy(join(served, name)).verdict;
      expect(verdict.checksum).toEqual(sha(content));
      if (content === bytes) expect(verdict.problems).toEqual([]);
      else expect(describeProblems(verdict.problems)).toMatch(/./);
    }
  });

  it("is never started over a database, and refuses a size it could not hold", async () => {
    const target = dir();
    await seedDataDir(target, 10);
    await expect(SnapshotDownload.start(target, { bytes: 100 })).rejects.toThrow(
      /holds a database/,
    );
    await expect(SnapshotDownload.start(dir(), { bytes: 2 ** 50 })).rejects.toThrow(
      /past the limit/,
    );
  });
});
