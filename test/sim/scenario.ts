import type { Consistency } from "../../src/replication/replicator.js";
import { SimCluster } from "./cluster.js";
import { SimNetwork } from "./network.js";
import { Scheduler, seededRandom } from "./scheduler.js";

export interface ScenarioResult {
  readonly seed: number;
  readonly nodes: number;
  readonly likes: number;
  readonly acknowledged: number;
  readonly lost: number;
  readonly events: number;
  /** Answers that carried the answering node's own entries (rides). */
  readonly rides: number;
  readonly violations: string[];
}

const CHAOS_MS = 20_000;
const SETTLE_MS = 30_000;

/**
 * One seeded run: 3 to 25 nodes take likes for 20 s of virtual time (half the runs with a burst
 * of hundreds within 0.6 s) while the network delays, drops, duplicates and reorders messages,
 * partitions come and go, and nodes crash and restart (some with a wiped disk). Then everything
 * heals, and after 30 s the invariants must hold.
 */
export async function runScenario(seed: number): Promise<ScenarioResult> {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const scheduler = new Scheduler();
  const network = new SimNetwork(scheduler, random);
  // Small clusters are common, large ones rarer: cost grows with the square of the size.
  const size = 3 + Math.floor(random() ** 2 * 23);
  const cluster = new SimCluster(size, scheduler, network, random);
  const start = scheduler.now();
  network.faults = {
    minDelayMs: 1,
    // Half the runs on a fast network: answers come back within a pace, so rides can happen.
    maxDelayMs: 2 + random() * (random() < 0.5 ? 3 : 60),
    // A lost message stalls its link until a timeout (a real link breaks and reconnects), and a
    // stalled link carries no rides: a third of the runs lose nothing.
    loss: random() < 1 / 3 ? 0 : random() * 0.2,
    duplication: random() * 0.1,
  };

  const likes = Math.floor((40 + random() * 160) * Math.min(1, 8 / size));
  const posts = Array.from({ length: 1 + Math.floor(random() * 5) }, (_, i) => `post-${i}`);
  const users = Array.from({ length: 3 + Math.floor(random() * 40) }, (_, i) => `user-${i}`);
  const levels: Consistency[] = ["local", "local", "local", "quorum", "all"];
  for (let i = 0; i < likes; i++)
    scheduler.setTimeout(
      () => cluster.like(pick(cluster.nodes), pick(posts), pick(users), pick(levels)),
      random() * CHAOS_MS,
    );

  // Half the runs have a burst as well: hundreds of likes within 0.1 to 0.6 s, so that pushes
  // come every pace and the answers carry rides (pusher.ts) while the faults below strike.
  let burst = 0;
  if (random() < 0.5) {
    const at = random() * CHAOS_MS;
    const span = 100 + random() * 500;
    burst = Math.floor((100 + random() * 300) * Math.min(1, 8 / size));
    // New users, so that every like of the burst is an entry; plain likes, which may ride (one
    // that a writer waits for goes at once).
    for (let i = 0; i < burst; i++)
      scheduler.setTimeout(
        () => cluster.like(pick(cluster.nodes), pick(posts), `burst-user-${i}`, "local"),
        at + random() * span,
      );
  }

  // Faults during the chaos window.
  const faults = Math.floor(random() * 8);
  for (let i = 0; i < faults; i++) {
    const at = random() * CHAOS_MS;
    const kind = random();
    if (kind < 0.4) {
      scheduler.setTimeout(() => {
        const cut = 1 + Math.floor(random() * (size - 1));
        const shuffled = [...cluster.addresses].sort(() => random() - 0.5);
        network.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
      }, at);
      scheduler.setTimeout(() => network.partition([cluster.addresses]), at + random() * 5000);
    } else {
      const node = pick(cluster.nodes);
      const wipe = kind > 0.85;
      scheduler.setTimeout(() => cluster.crash(node, wipe), at);
      scheduler.setTimeout(() => node.alive || node.start(), at + 100 + random() * 4000);
    }
  }

  await scheduler.runUntil(start + CHAOS_MS + 5000);
  network.heal();
  cluster.restartAll();
  await scheduler.runUntil(start + CHAOS_MS + 5000 + SETTLE_MS);
  for (const node of cluster.nodes) node.replicator.stop();
  return {
    seed,
    nodes: size,
    likes: likes + burst,
    acknowledged: cluster.acknowledged.length,
    lost: cluster.lostWithDisk.size,
    events: scheduler.events,
    rides: network.rides,
    violations: cluster.violations(),
  };
}
