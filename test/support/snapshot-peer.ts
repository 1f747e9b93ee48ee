// For snapshot bootstrap tests: data directories seeded with many likes in-process, and a peer
// that serves snapshots over a real peer link (src/link/server.ts, src/replication/
// snapshot-source.ts) but can hold chunks back, damage them or cut them short.
import { join } from "node:path";
import Database from "better-sqlite3";
import type { Entry, NodeName, OriginId, PostId, UserId } from "../../src/crdt/index.js";
import { LinkServer } from "../../src/link/server.js";
import { binaryCodec } from "../../src/replication/codec.js";
import { systemClock } from "../../src/replication/ports.js";
import { isSnapshotRequest } from "../../src/replication/protocol.js";
import { SnapshotSource, type ServedSnapshot } from "../../src/replication/snapshot-source.js";
import { DB_FILE } from "../../src/store/data-dir.js";
import { SqliteStore } from "../../src/store/index.js";
import { noMetrics, silentLogger } from "../../src/telemetry/types.js";
import { TEST_SECRET } from "./cluster.js";

export const SEED_ORIGIN = "writer~seed0" as OriginId;

/**
 * Writes `count` likes of one foreign origin (posts post-0..99) into a data directory; in pages
 * of `pageSize` when given (as a version before 4 KiB pages made its files).
 */
export async function seedDataDir(
  dataDir: string,
  count: number,
  pageSize?: number,
): Promise<void> {
  if (pageSize !== undefined) {
    const db = new Database(join(dataDir, DB_FILE));
    db.exec(`PRAGMA page_size = ${pageSize}; PRAGMA journal_mode = WAL`);
    db.close();
  }
  const store = SqliteStore.open({ dataDir, nodeName: "seeder" as NodeName, fsync: "normal" });
  const ts = Date.now();
  for (let start = 0; start < count; start += 10_000) {
    const entries: Entry[] = [];
    for (let i = start; i < Math.min(count, start + 10_000); i++)
      entries.push({
        origin: SEED_ORIGIN,
        seq: i + 1,
        post: `post-${i % 100}` as PostId,
        user: `user-${i}` as UserId,
        ts,
      });
    await store.apply(entries);
  }
  await store.close();
}

/** What the peer does to a chunk before sending it (the bytes as read, at their offset). */
export type ChunkHook = (offset: number, data: Buffer) => Promise<Buffer> | Buffer;

/** A peer that serves snapshots of a store and answers nothing else. */
export class SnapshotPeer {
  chunksAsked = 0;
  hook: ChunkHook = (_offset, data) => data;

  private constructor(
    private readonly store: SqliteStore,
    private readonly server: LinkServer,
    private readonly source: SnapshotSource,
    readonly port: number,
  ) {}

  static async start(dataDir: string, name = "fakepeer"): Promise<SnapshotPeer> {
    const store = SqliteStore.open({ dataDir, nodeName: name as NodeName, fsync: "normal" });
    // What the peer does to chunks, set by the test once the peer is made.
    const control: { peer?: SnapshotPeer } = {};
    const source = new SnapshotSource({
      self: { node: name as NodeName, origin: store.origin },
      entries: () => [...store.digest().values()].reduce((a, b) => a + b, 0),
      make: async () => {
        const snapshot = await store.snapshot();
        const served: ServedSnapshot = {
          bytes: snapshot.bytes,
          verdict: snapshot.verdict,
          vv: snapshot.vv,
          entryCount: snapshot.entryCount,
          read: async (offset, length) => {
            const peer = control.peer;
            if (peer) peer.chunksAsked++;
            const data = await snapshot.read(offset, length);
            return peer ? peer.hook(offset, data) : data;
          },
          remove: () => snapshot.remove(),
        };
        return served;
      },
      clock: systemClock,
      logger: silentLogger,
      metrics: noMetrics,
    });
    const server = new LinkServer({
      secret: TEST_SECRET,
      node: name,
      codec: binaryCodec,
      handle: (request) =>
        isSnapshotRequest(request)
          ? source.answer(request)
          : Promise.reject(new Error("this peer serves snapshots only")),
      logger: silentLogger,
      metrics: noMetrics,
    });
    const port = await server.listen(0, "127.0.0.1");
    control.peer = new SnapshotPeer(store, server, source, port);
    return control.peer;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    await this.server.close();
    await this.source.stop();
    await this.store.close();
  }
}
