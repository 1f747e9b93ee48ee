// Fills a data directory with likes of one foreign origin, as replication would, with the
// store's own apply in batches; prints how long the applies took (ms) as JSON on stdout:
// node dist-bench/bench/gen.js <dataDir> <count> [nodeName] [firstSeq] [batch]
import type { NodeName } from "../src/crdt/index.js";
import { SqliteStore } from "../src/store/index.js";
import { seededEntries } from "./lib/seeded.js";

const [dataDir, countText, name = "seeded", firstText = "1", batchText = "20000"] =
  process.argv.slice(2);
if (!dataDir || !countText)
  throw new Error("usage: gen.js <dataDir> <count> [nodeName] [firstSeq] [batch]");
const count = Number(countText);
const first = Number(firstText);
const batch = Number(batchText);
const store = SqliteStore.open({ dataDir, nodeName: name as NodeName, fsync: "normal" });
const ts = Date.now();
let applyMs = 0;
for (let start = 0; start < count; start += batch) {
  const entries = seededEntries(first + start, first - 1 + Math.min(count, start + batch), ts);
  const started = performance.now();
  await store.apply(entries);
  applyMs += performance.now() - started;
}
await store.close();
process.stdout.write(JSON.stringify({ likes: count, applyMs }) + "\n");
