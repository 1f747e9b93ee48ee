// Writes on a node whose peers do not acknowledge (none yet, or all down): the cost of a like
// must stay flat as own entries pile up unconverged past the tracked bound (convergence.ts).
// In-process, on the replication core and the memory store, so that only the core is timed.
import { MAX_TRACKED } from "../../src/replication/convergence.js";
import { StaticMembership, systemClock } from "../../src/replication/ports.js";
import { Replicator } from "../../src/replication/replicator.js";
import type { NodeName, PostId, UserId } from "../../src/crdt/index.js";
import { MemoryStore } from "../../src/store/index.js";
import { silentLogger } from "../../src/telemetry/types.js";

export interface NoPeersResult {
  readonly likes: number;
  /** CPU µs per like while fewer than MAX_TRACKED entries are unconverged. */
  readonly beforeBoundUs: number;
  /** CPU µs per like once MAX_TRACKED entries are unconverged. */
  readonly pastBoundUs: number;
}

const CONCURRENT = 100;
const SLICES = 5;

export async function noPeers(multiple: number): Promise<NoPeersResult> {
  const likes = Math.round(MAX_TRACKED * multiple);
  const store = MemoryStore.open("bench" as NodeName);
  const replicator = new Replicator({
    store,
    transport: { send: () => Promise.reject(new Error("no peers")) },
    clock: systemClock,
    random: Math.random,
    // An address that never answers: its entries stay unconverged, as behind a down peer.
    membership: new StaticMembership([]),
    logger: silentLogger,
    pushMs: 5,
    syncMs: 60_000,
  });
  replicator.start();
  const window = Math.min(MAX_TRACKED / 2, likes / 4);
  const slice = window / SLICES;
  // The cheapest slice of a window: robust to a GC pause or another process on the two cores.
  const cpuUsPerLike = async (from: number): Promise<number> => {
    let best = Infinity;
    for (let start = from; start < from + window; start += slice) {
      const before = process.cpuUsage();
      for (let n = start; n < start + slice; n += CONCURRENT) {
        const batch: Promise<unknown>[] = [];
        for (let i = n; i < n + CONCURRENT; i++)
          batch.push(
            replicator.write(
              { post: `p${i % 1000}` as PostId, user: `u${i}` as UserId },
              "local",
              1,
            ),
          );
        await Promise.all(batch);
      }
      const used = process.cpuUsage(before);
      best = Math.min(best, (used.user + used.system) / slice);
    }
    return best;
  };
  // Warm up, then one window before the bound and one well past it.
  await cpuUsPerLike(0);
  const beforeBoundUs = await cpuUsPerLike(window);
  for (let n = 2 * window; n < likes - window; n += window) await cpuUsPerLike(n);
  const pastBoundUs = await cpuUsPerLike(likes - window);
  replicator.stop();
  await store.close();
  return { likes, beforeBoundUs, pastBoundUs };
}
