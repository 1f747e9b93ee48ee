// The replicator tests' simulated cluster: real replicators and memory stores on a simulated
// network in virtual time, and a backlog of likes to replicate.
import type { Entry, NodeName, OriginId, PostId, UserId } from "../../src/crdt/index.js";
import type { PeerLimits } from "../../src/replication/limits.js";
import { StaticMembership, type Membership, type Transport } from "../../src/replication/ports.js";
import { Replicator } from "../../src/replication/replicator.js";
import { MemoryStore } from "../../src/store/index.js";
import { noMetrics, silentLogger, type Metrics } from "../../src/telemetry/types.js";
import { SimNetwork } from "../sim/network.js";
import { Scheduler, seededRandom } from "../sim/scheduler.js";

interface SimNodeOptions {
  readonly metrics?: Metrics;
  /** LIKES_PUSH_MS; 5 unless given. */
  readonly pushMs?: number;
  readonly syncMs?: number;
  readonly retryMaxMs?: number;
  /** Sees every request the node receives, before it answers. */
  readonly onRequest?: (request: Parameters<Replicator["handle"]>[0]) => void;
  /** Stands between the node and the network, for what it sends. */
  readonly wrapTransport?: (transport: Transport) => Transport;
  /** Who its peers are, when they change (else the `peers` given, for good). */
  readonly membership?: Membership;
  /** What a peer may make it hold (limits.ts). */
  readonly limits?: PeerLimits;
  /** LIKES_FAULTS: whether its pushes to a peer (by node name) are paused. */
  readonly pushPaused?: (peer: string | undefined) => boolean;
}

/** Real replicators and memory stores on a simulated network, in virtual time. */
export function simNetwork(seed: number) {
  const scheduler = new Scheduler();
  const random = seededRandom(seed);
  const network = new SimNetwork(scheduler, random);
  const node = (name: string, peers: string[], options: SimNodeOptions = {}) => {
    const store = MemoryStore.open(name as NodeName, {
      schedule: (flush) => scheduler.setTimeout(flush, 0),
    });
    const endpoint = {
      address: `${name}:1`,
      alive: true,
      life: 1,
      handle: (r: Parameters<Replicator["handle"]>[0]) => {
        options.onRequest?.(r);
        return replicator.handle(r);
      },
    };
    const replicator: Replicator = new Replicator({
      store,
      transport: (options.wrapTransport ?? ((t) => t))(network.transportFor(endpoint)),
      clock: scheduler,
      random,
      membership: options.membership ?? new StaticMembership(peers.map((p) => `${p}:1`)),
      logger: silentLogger,
      pushMs: options.pushMs ?? 5,
      syncMs: options.syncMs ?? 1000,
      ...(options.retryMaxMs === undefined ? {} : { retryMaxMs: options.retryMaxMs }),
      ...(options.metrics ? { metrics: options.metrics } : {}),
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.pushPaused ? { pushPaused: options.pushPaused } : {}),
    });
    network.attach(endpoint);
    return { store, replicator, endpoint };
  };
  return { scheduler, network, node };
}

export type SimNode = ReturnType<ReturnType<typeof simNetwork>["node"]>;

/**
 * Plain likes of `post` on a schedule of virtual time: at `afterMs + i * everyMs` for i below
 * `count`, one on each writer, in their order, whose i-th user is its prefix then i.
 */
export function scheduleLikes(
  scheduler: Scheduler,
  writers: readonly (readonly [node: SimNode, userPrefix: string])[],
  count: number,
  { everyMs = 1, afterMs = 0, post = "p" } = {},
): void {
  for (let i = 0; i < count; i++)
    scheduler.setTimeout(
      () => {
        for (const [node, prefix] of writers)
          void node.replicator.write(
            { post: post as PostId, user: `${prefix}${i}` as UserId },
            "local",
            1000,
          );
      },
      afterMs + i * everyMs,
    );
}

export function twoNodes(metrics: Metrics = noMetrics) {
  const { scheduler, network, node } = simNetwork(7);
  return { scheduler, network, a: node("a", ["b"], { metrics }), b: node("b", ["a"]) };
}

export const bulk = (n: number): Entry[] =>
  Array.from({ length: n }, (_, i) => ({
    origin: "old~1" as OriginId,
    seq: i + 1,
    post: `p${i % 10}` as PostId,
    user: `u${i}` as UserId,
    ts: 1,
  }));
