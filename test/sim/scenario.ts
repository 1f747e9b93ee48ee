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
  /** Answers that carried the answering node's own entries (rides) and reached the pusher. */
  readonly rides: number;
  /** Pushes that acknowledged rides (an `acks` digest) and reached their peer. */
  readonly rideAcks: number;
  readonly violations: string[];
}

const CHAOS_MS = 20_000;
const SETTLE_MS = 30_000;
/** The share of seeds that are ride runs: a fast network that loses nothing, and a burst. */
const RIDE_RUNS = 0.4;
const RIDE_STREAM = 0x5eed5eed;

/**
 * One seeded run: 3 to 25 nodes take likes for 20 s of virtual time while the network delays,
 * drops, duplicates and reorders messages, partitions come and go, and nodes crash and restart
 * (some with a wiped disk). Then everything heals, and after 30 s the invariants must hold.
 * Two runs in five are ride runs: a fast network that loses nothing, and a burst of likes.
 */
export async function runScenario(seed: number): Promise<ScenarioResult> {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  // A ride run draws what makes it one from a stream of its own, so that the main stream plays
  // as before: a seed that is not a ride run replays the scenario it made before ride runs.
  const rideRandom = seededRandom(seed ^ RIDE_STREAM);
  const rideRun = rideRandom() < RIDE_RUNS;
  const scheduler = new Scheduler();
  const network = new SimNetwork(scheduler, random);
  // Small clusters are common, large ones rarer: cost grows with the square of the size.
  const size = 3 + Math.floor(random() ** 2 * 23);
  const cluster = new SimCluster(size, scheduler, network, random);
  const start = scheduler.now();
  network.faults = {
    minDelayMs: 1,
    maxDelayMs: 2 + random() * 60,
    loss: random() * 0.2,
    duplication: random() * 0.1,
  };
  // A ride needs pushes every pace, answers back within a pace and nothing in flight: a fast
  // network that loses nothing (a lost message stalls its link until a timeout, as a real link
  // breaks and reconnects). It still duplicates and reorders.
  if (rideRun) network.faults = { ...network.faults, maxDelayMs: 2 + rideRandom() * 3, loss: 0 };

  const likes = Math.floor((40 + random() * 160) * Math.min(1, 8 / size));
  const posts = Array.from({ length: 1 + Math.floor(random() * 5) }, (_, i) => `post-${i}`);
  const users = Array.from({ length: 3 + Math.floor(random() * 40) }, (_, i) => `user-${i}`);
  const levels: Consistency[] = ["local", "local", "local", "quorum", "all"];
  for (let i = 0; i < likes; i++)
    scheduler.setTimeout(
      () => cluster.like(pick(cluster.nodes), pick(posts), pick(users), pick(levels)),
      random() * CHAOS_MS,
    );

  // And a burst: 100 to 400 plain likes (scaled down on large clusters) of new users, each one
  // an entry, within 0.1 to 0.6 s, while the faults below strike.
  let burst = 0;
  if (rideRun) {
    const at = rideRandom() * CHAOS_MS;
    const span = 100 + rideRandom() * 500;
    burst = Math.floor((100 + rideRandom() * 300) * Math.min(1, 8 / size));
    for (let i = 0; i < burst; i++) {
      const node = cluster.nodes[Math.floor(rideRandom() * size)] as (typeof cluster.nodes)[number];
      const post = posts[Math.floor(rideRandom() * posts.length)] as string;
      scheduler.setTimeout(
        () => cluster.like(node, post, `burst-user-${i}`, "local"),
        at + rideRandom() * span,
      );
    }
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
    rideAcks: network.rideAcks,
    violations: cluster.violations(),
  };
}
