// Fills a data directory with `count` likes of one foreign origin, as replication would:
// node dist-bench/bench/gen.js <dataDir> <count> [nodeName]
import type { Entry, NodeName, OriginId, PostId, UserId } from "../src/crdt/index.js";
import { SqliteStore } from "../src/store/index.js";

const [dataDir, countText, name = "seeded"] = process.argv.slice(2);
if (!dataDir || !countText) throw new Error("usage: gen.js <dataDir> <count> [nodeName]");
const count = Number(countText);
const store = SqliteStore.open({ dataDir, nodeName: name as NodeName, fsync: "normal" });
const origin = "writer~bench0" as OriginId;
const BATCH = 20_000;
const ts = Date.now();
for (let start = 0; start < count; start += BATCH) {
  const entries: Entry[] = [];
  for (let i = start; i < Math.min(count, start + BATCH); i++)
    entries.push({
      origin,
      seq: i + 1,
      post: `post-${i % 10_000}` as PostId,
      user: `user-${i}` as UserId,
      ts,
    });
  await store.apply(entries);
}
await store.close();
