// The store alone, as a receiving peer uses it: commits of a few likes of one peer at random
// posts, back to back, into a store that already holds some. Prints, as JSON on stdout, the
// time of the commit's transaction (as likes_store_commit_seconds sees it) and the bytes of log
// each commit wrote:
// node dist-bench/bench/commits.js <dataDir> <held> <commits> <likesPerCommit>
import type { Entry, NodeName, OriginId, PostId, UserId } from "../src/crdt/index.js";
import { seededRandom } from "../src/load/zipf.js";
import { SqliteStore } from "../src/store/index.js";
import { SEEDED_POSTS, seededEntries } from "./lib/seeded.js";

const [dataDir, heldText, commitsText, perCommitText] = process.argv.slice(2);
if (!dataDir || !heldText || !commitsText || !perCommitText)
  throw new Error("usage: commits.js <dataDir> <held> <commits> <likesPerCommit>");
const held = Number(heldText);
const commits = Number(commitsText);
const perCommit = Number(perCommitText);
const nodeName = "commits" as NodeName;
const ts = Date.now();

let transactionSeconds = 0;
const metrics = { storeCommitted: (seconds: number) => void (transactionSeconds += seconds) };
const open = (checkpointEveryMs?: number) =>
  SqliteStore.open({ dataDir, nodeName, fsync: "normal", checkpointEveryMs, metrics });

// What the node holds already: likes of another origin, in bulk.
let store = open();
for (let start = 0; start < held; start += 20_000)
  await store.apply(seededEntries(start + 1, Math.min(held, start + 20_000), ts));
await store.close();

// Reopened with a checkpoint worker that does not run before the end (and SQLite's automatic
// checkpoint off, as in a node), so that the log's growth is what the commits wrote. The copy
// of those bytes into the database, which a node's worker makes later, is not in the figure.
store = open(3_600_000);
const peer = "peer~bench1" as OriginId;
// A fixed sequence of posts, the same in every run.
const random = seededRandom(12_345);
const nextPost = () => Math.floor(random() * SEEDED_POSTS);
let seq = 0;
const walBefore = store.walBytes();
transactionSeconds = 0;
for (let c = 0; c < commits; c++) {
  const entries: Entry[] = [];
  for (let i = 0; i < perCommit; i++) {
    seq++;
    entries.push({
      origin: peer,
      seq,
      post: `post-${nextPost()}` as PostId,
      user: `peer-user-${seq}` as UserId,
      ts,
    });
  }
  await store.apply(entries, peer);
}
const walBytes = store.walBytes() - walBefore;
await store.close();
process.stdout.write(
  JSON.stringify({
    commits,
    perCommit,
    transactionUs: (transactionSeconds * 1e6) / commits,
    walBytesPerCommit: walBytes / commits,
  }) + "\n",
);
