// Snapshot bootstrap: the joining end's choice of peer and its checks of what the peer sends, and
// LIKES_SNAPSHOT_THRESHOLD, which decides when a node bootstraps from a snapshot.
import { describe, expect, it } from "vitest";
import { ConfigError, DEFAULT_SNAPSHOT_THRESHOLD, loadConfig } from "../../src/config.js";
import type { Transport } from "../../src/replication/ports.js";
import {
  MAX_SNAPSHOT_CHUNK,
  type PeerMessage,
  type PeerRequest,
  type SnapshotBeginReply,
  type SnapshotEndReply,
} from "../../src/replication/protocol.js";
import {
  bootstrapFromSnapshot,
  type SnapshotSink,
} from "../../src/replication/snapshot-bootstrap.js";
import { noMetrics, silentLogger } from "../../src/telemetry/types.js";
import { manualClock, peerSelf, self } from "./snapshot-harness.js";

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
