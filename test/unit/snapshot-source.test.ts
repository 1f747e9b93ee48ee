// Snapshot serving: the peer messages, and the serving end's copies (how many, for whom, their
// chunks and their removal).
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { binaryCodec } from "../../src/replication/codec.js";
import {
  MAX_SNAPSHOT_CHUNK,
  MalformedMessageError,
  type PeerMessage,
  type SnapshotBeginReply,
  type SnapshotChunkReply,
} from "../../src/replication/protocol.js";
import {
  MAX_SERVING,
  SnapshotGoneError,
  describeProblems,
  SnapshotSource,
  type ServedSnapshot,
} from "../../src/replication/snapshot-source.js";
import { noMetrics, silentLogger } from "../../src/telemetry/types.js";
import { SEED_ORIGIN } from "../support/snapshot-peer.js";
import { manualClock, peerSelf, self, sha } from "./snapshot-harness.js";

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
