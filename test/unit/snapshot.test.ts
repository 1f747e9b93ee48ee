// Snapshot bootstrap parts: the peer messages, the served copy, the checked download and its
// install, and the joining end's checks of what a peer sends.
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, DEFAULT_SNAPSHOT_THRESHOLD, loadConfig } from "../../src/config.js";
import type { NodeName, OriginId } from "../../src/crdt/index.js";
import { binaryCodec } from "../../src/replication/codec.js";
import type { Clock, Transport } from "../../src/replication/ports.js";
import {
  MAX_SNAPSHOT_CHUNK,
  MalformedMessageError,
  type PeerMessage,
  type PeerRequest,
  type SnapshotBeginReply,
  type SnapshotChunkReply,
  type SnapshotEndReply,
} from "../../src/replication/protocol.js";
import {
  bootstrapFromSnapshot,
  type SnapshotSink,
} from "../../src/replication/snapshot-bootstrap.js";
import {
  MAX_SERVING,
  SnapshotGoneError,
  describeProblems,
  SnapshotSource,
  type ServedSnapshot,
} from "../../src/replication/snapshot-source.js";
import {
  SNAPSHOT_CHECKSUM,
  SnapshotDownload,
  checkCopy,
  SnapshotRefusedError,
  SqliteStore,
  type StoreSnapshot,
} from "../../src/store/index.js";
import { PAGE_SIZE } from "../../src/store/sqlite-schema.js";
import { noMetrics, silentLogger } from "../../src/telemetry/types.js";
import { SEED_ORIGIN, seedDataDir } from "../support/snapshot-peer.js";
import { pageSizeOf } from "../support/sqlite-file.js";

const self = { node: "joiner" as NodeName, origin: "joiner~tmp1" as OriginId };
const peerSelf = { node: "server" as NodeName, origin: "server~abc1" as OriginId };

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

const sha = (bytes: Buffer) => createHash(SNAPSHOT_CHECKSUM).update(bytes).digest();

async function download(target: string, bytes: Buffer) {
  const d = await SnapshotDownload.start(target, { bytes: bytes.length });
  for (let offset = 0; offset < bytes.length; offset += MAX_SNAPSHOT_CHUNK)
    await d.write(offset, bytes.subarray(offset, offset + MAX_SNAPSHOT_CHUNK));
  return d;
}

const leftovers = (d: string) => readdirSync(d).filter((name) => !name.startsWith("likes.lock"));

describe("snapshot messages", () => {
  it("decodes every snapshot message it encodes to an equal message", () => {
    const messages: PeerMessage[] = [
      { kind: "snapshot-begin", ...self, minEntries: 100_001 },
      {
        kind: "snapshot-begin-reply",
        ...peerSelf,
        id: 3,
        bytes: 123_456_789,
        entryCount: 5_000_000,
        vv: new Map([[SEED_ORIGIN, 5_000_000]]),
      },
      { kind: "snapshot-chunk", ...self, id: 3, offset: 524_288 },
      {
        kind: "snapshot-chunk-reply",
        ...peerSelf,
        id: 3,
        offset: 524_288,
        data: randomBytes(MAX_SNAPSHOT_CHUNK),
      },
      { kind: "snapshot-end", ...self, id: 3 },
      { kind: "snapshot-end-reply", ...peerSelf, id: 3, checksum: randomBytes(32), problem: "" },
      {
        kind: "snapshot-end-reply",
        ...peerSelf,
        id: 3,
        checksum: randomBytes(32),
        problem: describeProblems(["*** in database main ***", `page 7: ${"x".repeat(300)}`]),
      },
    ];
    for (const message of messages)
      expect(binaryCodec.decode(binaryCodec.encode(message), message.kind)).toEqual(message);
  });

  it("refuses a chunk past the chunk limit and bytes of no snapshot", () => {
    const big = binaryCodec.encode({
      kind: "snapshot-chunk-reply",
      ...peerSelf,
      id: 1,
      offset: 0,
      data: Buffer.alloc(10),
    });
    // The length varint (10) rewritten as MAX_SNAPSHOT_CHUNK + 1 without the bytes: refused on the length.
    const head = big.subarray(0, big.length - 11);
    const tooLong = Buffer.concat([head, Buffer.from([0x81, 0x80, 0x20])]);
    expect(() => binaryCodec.decode(tooLong, "snapshot-chunk-reply")).toThrow(
      MalformedMessageError,
    );
    const none = binaryCodec.encode({
      kind: "snapshot-begin-reply",
      ...peerSelf,
      id: 0,
      bytes: 5,
      entryCount: 0,
      vv: new Map(),
    });
    expect(() => binaryCodec.decode(none, "snapshot-begin-reply")).toThrow(/bytes of no snapshot/);
  });
});

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

/** A clock whose timers run when the test says. */
function manualClock(): Clock & { fire(): void } {
  const timers = new Set<() => void>();
  return {
    now: () => 0,
    setTimeout: (callback) => {
      timers.add(callback);
      return { cancel: () => timers.delete(callback) };
    },
    fire: () => {
      for (const t of [...timers]) {
        timers.delete(t);
        t();
      }
    },
  };
}

function fakeSnapshot(size: number): ServedSnapshot & { removed: boolean } {
  const bytes = randomBytes(size);
  return {
    bytes: size,
    verdict: Promise.resolve({ checksum: sha(bytes), problems: [] }),
    vv: new Map([[SEED_ORIGIN, 7]]),
    entryCount: 7,
    removed: false,
    read: (offset, length) => Promise.resolve(bytes.subarray(offset, offset + length)),
    remove() {
      this.removed = true;
      return Promise.resolve();
    },
  };
}

describe("snapshot source", () => {
  it("makes no copy for a caller that asks more than it holds, and at most MAX_SERVING at once", async () => {
    const made: ReturnType<typeof fakeSnapshot>[] = [];
    const warnings: string[] = [];
    const source = new SnapshotSource({
      self: peerSelf,
      entries: () => 7,
      make: () => {
        const s = fakeSnapshot(10);
        made.push(s);
        return Promise.resolve(s);
      },
      clock: manualClock(),
      logger: { ...silentLogger, warn: (message) => warnings.push(message) },
      metrics: noMetrics,
    });
    const none = await source.answer({ kind: "snapshot-begin", ...self, minEntries: 8 });
    expect(none).toMatchObject({ id: 0, bytes: 0, entryCount: 7 });
    expect(made).toHaveLength(0);
    for (let i = 0; i < MAX_SERVING; i++)
      expect(
        (await source.answer({ kind: "snapshot-begin", ...self, minEntries: 7 })).id,
      ).toBeGreaterThan(0);
    // Refused for want of room, as often as asked; told once (a caller retrying must not flood).
    for (let i = 0; i < 50; i++)
      expect((await source.answer({ kind: "snapshot-begin", ...self, minEntries: 7 })).id).toBe(0);
    expect(warnings).toEqual(["snapshot refused: serving as many as allowed"]);
    await source.stop();
    expect(made.every((s) => s.removed)).toBe(true);
  });

  it("on stop, aborts the copies being made and removes those made meanwhile, before it resolves", async () => {
    const late = fakeSnapshot(10);
    let finishLate: () => void = () => {};
    const makes: ((signal: AbortSignal) => Promise<ServedSnapshot>)[] = [
      // Still copying: aborted.
      (signal) =>
        new Promise((_, reject) =>
          signal.addEventListener("abort", () => reject(signal.reason as Error)),
        ),
      // Past the last step of its copy: it completes after the stop.
      () => new Promise((resolve) => (finishLate = () => resolve(late))),
    ];
    const source = new SnapshotSource({
      self: peerSelf,
      entries: () => 7,
      make: (signal) => (makes.shift() as (s: AbortSignal) => Promise<ServedSnapshot>)(signal),
      clock: manualClock(),
      logger: silentLogger,
      metrics: noMetrics,
    });
    const begins = [0, 1].map(() =>
      source.answer({ kind: "snapshot-begin", ...self, minEntries: 7 }),
    );
    let stopped = false;
    const stopping = source.stop().then(() => (stopped = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    finishLate();
    await stopping;
    expect(late.removed).toBe(true);
    for (const reply of await Promise.all(begins)) expect(reply).toMatchObject({ id: 0, bytes: 0 });
  });

  it("serves chunks of a copy, removes it once its end is answered or left idle, and refuses bad ids and offsets", async () => {
    const clock = manualClock();
    const made: ReturnType<typeof fakeSnapshot>[] = [];
    const source = new SnapshotSource({
      self: peerSelf,
      entries: () => 7,
      make: () => {
        const s = fakeSnapshot(MAX_SNAPSHOT_CHUNK + 5);
        made.push(s);
        return Promise.resolve(s);
      },
      clock,
      logger: silentLogger,
      metrics: noMetrics,
    });
    const begin = (await source.answer({
      kind: "snapshot-begin",
      ...self,
      minEntries: 1,
    })) as SnapshotBeginReply;
    await expect(
      source.answer({ kind: "snapshot-chunk", ...self, id: begin.id, offset: begin.bytes }),
    ).rejects.toThrow(MalformedMessageError);
    await expect(
      source.answer({ kind: "snapshot-chunk", ...self, id: begin.id + 9, offset: 0 }),
    ).rejects.toThrow(SnapshotGoneError);
    const last = (await source.answer({
      kind: "snapshot-chunk",
      ...self,
      id: begin.id,
      offset: MAX_SNAPSHOT_CHUNK,
    })) as SnapshotChunkReply;
    expect(last.data.length).toBe(5);
    expect(made[0]?.removed).toBe(false);
    const first = (await source.answer({
      kind: "snapshot-chunk",
      ...self,
      id: begin.id,
      offset: 0,
    })) as SnapshotChunkReply;
    expect(first.data.length).toBe(MAX_SNAPSHOT_CHUNK);
    expect(made[0]?.removed).toBe(false);
    const end = await source.answer({ kind: "snapshot-end", ...self, id: begin.id });
    expect(end).toEqual({
      kind: "snapshot-end-reply",
      ...peerSelf,
      id: begin.id,
      checksum: (await made[0]?.verdict)?.checksum,
      problem: "",
    });
    expect(made[0]?.removed).toBe(true);
    await expect(
      source.answer({ kind: "snapshot-chunk", ...self, id: begin.id, offset: 0 }),
    ).rejects.toThrow(SnapshotGoneError);
    const idle = (await source.answer({
      kind: "snapshot-begin",
      ...self,
      minEntries: 1,
    })) as SnapshotBeginReply;
    clock.fire();
    expect(made[1]?.removed).toBe(true);
    await expect(
      source.answer({ kind: "snapshot-chunk", ...self, id: idle.id, offset: 0 }),
    ).rejects.toThrow(SnapshotGoneError);
  });
});

describe("snapshot bootstrap", () => {
  /** A sink that records what happens to it. */
  function recordingSink(): SnapshotSink & { events: string[] } {
    const events: string[] = [];
    return {
      events,
      write: (offset) => {
        events.push(`write ${offset}`);
        return Promise.resolve();
      },
      install: (checksum) => {
        events.push(`install ${checksum.toString("hex", 0, 2)}`);
        return Promise.resolve({});
      },
      abort: () => {
        events.push("abort");
        return Promise.resolve();
      },
    };
  }

  /** A peer's answers; the probe (a begin no store can meet) is answered as a peer would. */
  function transport(
    answer: (peer: string, request: PeerRequest) => Promise<PeerMessage>,
    held: (peer: string) => number = () => 70,
  ): Transport {
    return {
      send: (peer, request) =>
        (request.kind === "snapshot-begin" && request.minEntries === Number.MAX_SAFE_INTEGER
          ? answer(peer, request).then(() => ({ ...beginReply(0), id: 0, entryCount: held(peer) }))
          : answer(peer, request)) as never,
    };
  }

  const beginReply = (bytes: number): SnapshotBeginReply => ({
    kind: "snapshot-begin-reply",
    ...peerSelf,
    id: 4,
    bytes,
    entryCount: 70,
    vv: new Map(),
  });

  /** A bootstrap from `peers` (the one peer `up:2` by default), with a threshold of 10. */
  const fromPeers = (t: Transport, sink: SnapshotSink, peers = ["up:2"]) =>
    bootstrapFromSnapshot({
      transport: t,
      probe: t,
      peers,
      self,
      threshold: 10,
      open: () => Promise.resolve(sink),
      clock: manualClock(),
      logger: silentLogger,
      metrics: noMetrics,
    });

  const endReply = (problem: string): SnapshotEndReply => ({
    kind: "snapshot-end-reply",
    ...peerSelf,
    id: 4,
    checksum: Buffer.alloc(32, 7),
    problem,
  });

  it("asks the peer holding the most, past an unreachable one, and writes every chunk in order before installing", async () => {
    const bytes = 2 * MAX_SNAPSHOT_CHUNK + 3;
    const sink = recordingSink();
    const asked: string[] = [];
    const t = transport(
      (peer, request) => {
        if (peer === "down:1") return Promise.reject(new Error("refused"));
        if (request.kind === "snapshot-begin") {
          if (request.minEntries !== Number.MAX_SAFE_INTEGER) {
            asked.push(peer);
            expect(request.minEntries).toBe(11);
          }
          return Promise.resolve(beginReply(bytes));
        }
        if (request.kind === "snapshot-end") return Promise.resolve(endReply(""));
        if (request.kind !== "snapshot-chunk") throw new Error("unexpected");
        const length = Math.min(MAX_SNAPSHOT_CHUNK, bytes - request.offset);
        return Promise.resolve({
          kind: "snapshot-chunk-reply",
          ...peerSelf,
          id: 4,
          offset: request.offset,
          data: Buffer.alloc(length),
        });
      },
      (peer) => (peer === "most:3" ? 90 : peer === "few:4" ? 10 : 70),
    );
    const outcome = await fromPeers(t, sink, ["down:1", "up:2", "most:3", "few:4"]);
    // The most ahead first; the one at the threshold never.
    expect(asked).toEqual(["most:3"]);
    expect(outcome).toMatchObject({ installed: true, peer: "most:3", bytes, entries: 70 });
    expect(sink.events).toEqual([
      "write 0",
      `write ${MAX_SNAPSHOT_CHUNK}`,
      `write ${2 * MAX_SNAPSHOT_CHUNK}`,
      "install 0707",
    ]);
  });

  it("installs nothing when the serving peer found its copy damaged", async () => {
    const sink = recordingSink();
    const t = transport((_peer, request) =>
      Promise.resolve(
        request.kind === "snapshot-begin"
          ? beginReply(10)
          : request.kind === "snapshot-end"
            ? endReply("page 3: btreeInitPage() returns error code 11")
            : {
                kind: "snapshot-chunk-reply",
                ...peerSelf,
                id: 4,
                offset: 0,
                data: Buffer.alloc(10),
              },
      ),
    );
    const outcome = await fromPeers(t, sink);
    expect(outcome.installed).toBe(false);
    expect(sink.events).toEqual(["write 0", "abort"]);
  });

  it("refuses a chunk of another snapshot, offset or length, and installs nothing", async () => {
    for (const wrong of [{ id: 5 }, { offset: 1 }, { data: Buffer.alloc(2) }]) {
      const sink = recordingSink();
      const t = transport((_peer, request) =>
        Promise.resolve(
          request.kind === "snapshot-begin"
            ? beginReply(10)
            : {
                kind: "snapshot-chunk-reply",
                ...peerSelf,
                id: 4,
                offset: 0,
                data: Buffer.alloc(10),
                ...wrong,
              },
        ),
      );
      const outcome = await fromPeers(t, sink);
      expect(outcome.installed).toBe(false);
      expect(sink.events).toEqual(["abort"]);
    }
  });
});

describe("LIKES_SNAPSHOT_THRESHOLD", () => {
  it("defaults to 100,000, takes a count or off, and refuses anything else naming the variable", () => {
    expect(DEFAULT_SNAPSHOT_THRESHOLD).toBe(100_000);
    expect(loadConfig({}, "n").snapshotThreshold).toBe(100_000);
    expect(loadConfig({ LIKES_SNAPSHOT_THRESHOLD: "0" }, "n").snapshotThreshold).toBe(0);
    expect(loadConfig({ LIKES_SNAPSHOT_THRESHOLD: "2500000" }, "n").snapshotThreshold).toBe(
      2_500_000,
    );
    expect(loadConfig({ LIKES_SNAPSHOT_THRESHOLD: "off" }, "n").snapshotThreshold).toBeUndefined();
    for (const bad of ["-1", "1e6", "lots", "OFF", "9007199254740992"]) {
      expect(() => loadConfig({ LIKES_SNAPSHOT_THRESHOLD: bad }, "n")).toThrow(ConfigError);
      expect(() => loadConfig({ LIKES_SNAPSHOT_THRESHOLD: bad }, "n")).toThrow(
        /LIKES_SNAPSHOT_THRESHOLD must be an integer from 0 to \d+ or off/,
      );
    }
  });
});
