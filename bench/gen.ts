// Fills a data directory with likes of one foreign origin, as replication would, with the
// store's own apply in batches; prints how long the applies took (ms) as JSON on stdout:
// node dist-bench/bench/gen.js <dataDir> <count> [nodeName] [firstSeq] [batch]
import type { Entry, NodeName, OriginId, PostId, UserId } from "../src/crdt/index.js";
import { SqliteStore } from "../src/store/index.js";

const [dataDir, countText, name = "seeded", firstText = "1", batchText = "20000"] =
  process.argv.slice(2);
if (!dataDir || !countText)
  throw new Error("usage: gen.js <dataDir> <count> [nodeName] [firstSeq] [batch]");
const count = Number(countText);
const first = Number(firstText);
const batch = Number(batchText);
const store = SqliteStore.open({ dataDir, nodeName: name as NodeName, fsync: "normal" });
const origin = "writer~bench0" as OriginId;
const ts = Date.now();
let applyMs = 0;
for (let start = 0; start < count; start += batch) {
  const entries: Entry[] = [];
  for (let i = first - 1 + start; i < first - 1 + Math.min(count, start + batch); i++)
    entries.push({
      origin,
      seq: i + 1,
      post: `post-${i % 10_000}` as PostId,
      user: `user-${i}` as UserId,
      ts,
    });
  const started = performance.now();
  await store.apply(entries);
  applyMs += performance.now() - started;
}
await store.close();
process.stdout.write(JSON.stringify({ likes: count, applyMs }) + "\n");
