import {
  digestsEqual,
  dotKey,
  likeKey,
  type Like,
  type NodeName,
  type PostId,
  type UserId,
} from "../../src/crdt/index.js";
import { StaticMembership, type PeerAddress, type Random } from "../../src/replication/ports.js";
import {
  isSnapshotRequest,
  type PeerReply,
  type PeerRequest,
} from "../../src/replication/protocol.js";
import { Replicator, type Consistency } from "../../src/replication/replicator.js";
import { MemoryDisk, MemoryStore } from "../../src/store/index.js";
import { silentLogger } from "../../src/telemetry/types.js";
import type { Endpoint, SimNetwork } from "./network.js";
import type { Scheduler } from "./scheduler.js";

/** One simulated node: the real store and replicator, restartable on the same or a new disk. */
class SimNode implements Endpoint {
  alive = false;
  life = 0;
  disk = new MemoryDisk();
  store!: MemoryStore;
  replicator!: Replicator;
  incarnations = 0;

  constructor(
    readonly name: NodeName,
    readonly address: PeerAddress,
    private readonly cluster: SimCluster,
  ) {}

  start(): void {
    const life = ++this.life;
    const { scheduler, random } = this.cluster;
    this.store = MemoryStore.open(this.name, {
      disk: this.disk,
      newIncarnation: () => `i${++this.incarnations}x${Math.floor(random() * 1e9).toString(36)}`,
      // A commit scheduled before a crash never lands: the crash lost it.
      schedule: (flush) => scheduler.setTimeout(() => this.life === life && flush(), 0),
    });
    this.replicator = new Replicator({
      store: this.store,
      transport: this.cluster.network.transportFor(this),
      clock: scheduler,
      random,
      membership: new StaticMembership(this.cluster.addresses.filter((a) => a !== this.address)),
      logger: silentLogger,
      pushMs: 5,
      syncMs: 1000,
    });
    this.alive = true;
    this.replicator.start();
  }

  /** Stops at once: nothing queued is committed, nothing in flight is answered. */
  crash(wipe: boolean): void {
    this.alive = false;
    this.life++;
    this.replicator.stop();
    if (wipe) this.disk = new MemoryDisk();
  }

  handle(request: PeerRequest): Promise<PeerReply> {
    // Snapshots are files of the SQLite store: the simulated nodes neither serve nor ask one.
    if (isSnapshotRequest(request))
      return Promise.reject(new Error("the simulation serves no snapshots"));
    return this.replicator.handle(request);
  }
}

export interface Acknowledged {
  readonly like: Like;
  readonly node: NodeName;
}

/** A cluster of simulated nodes plus the bookkeeping that the invariants need. */
export class SimCluster {
  readonly nodes: SimNode[];
  readonly addresses: PeerAddress[];
  /** Likes whose POST was answered 2xx. */
  readonly acknowledged: Acknowledged[] = [];
  readonly posted = new Set<string>();
  /**
   * Likes of which some dot died with a wiped disk that no other disk held it on, while that
   * disk held it where it spreads: in its node's contiguous prefix (its own likes always are).
   * A dot held above a gap does not count: it could never spread, and losing it is the bug.
   */
  readonly lostWithDisk = new Set<string>();

  constructor(
    size: number,
    readonly scheduler: Scheduler,
    readonly network: SimNetwork,
    readonly random: Random,
  ) {
    this.addresses = Array.from({ length: size }, (_, i) => `n${i + 1}:7946`);
    this.nodes = this.addresses.map(
      (address, i) => new SimNode(`n${i + 1}` as NodeName, address, this),
    );
    for (const node of this.nodes) {
      network.attach(node);
      node.start();
    }
  }

  /** A client posts a like to a node; it counts as acknowledged once the write resolves. */
  like(node: SimNode, post: string, user: string, consistency: Consistency): void {
    if (!node.alive) return;
    const like = { post: post as PostId, user: user as UserId };
    this.posted.add(likeKey(post, user));
    const life = node.life;
    void node.replicator.write(like, consistency, 500).then(() => {
      if (node.life === life) this.acknowledged.push({ like, node: node.name });
    });
  }

  crash(node: SimNode, wipe: boolean): void {
    if (!node.alive) return;
    if (wipe) {
      // Dots that no other disk holds die with this one: the node's own, and any other that
      // its digest covers (it had them to give; its peers may all have lost theirs before).
      const elsewhere = new Set(
        this.nodes.filter((n) => n !== node).flatMap((n) => n.disk.log.map((e) => dotKey(e))),
      );
      const held = node.store.digest();
      for (const entry of node.disk.log)
        if (entry.seq <= (held.get(entry.origin) ?? 0) && !elsewhere.has(dotKey(entry)))
          this.lostWithDisk.add(likeKey(entry.post, entry.user));
    }
    node.crash(wipe);
  }

  restartAll(): void {
    for (const node of this.nodes) if (!node.alive) node.start();
  }

  /** Every invariant that must hold once the network has healed and the cluster settled. */
  violations(): string[] {
    const problems: string[] = [];
    const [first, ...rest] = this.nodes;
    if (!first) return problems;
    for (const ack of this.acknowledged) {
      // A like acknowledged anywhere must be everywhere, unless its only copies died with a disk.
      if (this.onlyLostCopies(ack)) continue;
      for (const node of this.nodes)
        if (!node.store.liked(ack.like.post, ack.like.user))
          problems.push(
            `${node.name} lacks acknowledged like ${ack.like.post}/${ack.like.user} (acked by ${ack.node})`,
          );
    }
    for (const node of rest) {
      if (!digestsEqual(node.store.digest(), first.store.digest()))
        problems.push(`${node.name} version vector differs from ${first.name}`);
      if (node.store.setSize() !== first.store.setSize())
        problems.push(
          `${node.name} holds ${node.store.setSize()} likes, ${first.name} ${first.store.setSize()}`,
        );
    }
    const posts = new Set([...this.posted].map((key) => key.split("\u0000")[0] as PostId));
    for (const node of this.nodes) {
      let total = 0;
      for (const post of posts) {
        const users = node.store.users(post, undefined, 1_000_000);
        if (users.length !== node.store.count(post))
          problems.push(
            `${node.name} counts ${node.store.count(post)} for ${post} but holds ${users.length} users`,
          );
        if (users.join() !== first.store.users(post, undefined, 1_000_000).join())
          problems.push(`${node.name} and ${first.name} differ on the users of ${post}`);
        for (const user of users)
          if (!this.posted.has(likeKey(post, user)))
            problems.push(`${node.name} holds a like never posted`);
        total += users.length;
      }
      if (total !== node.store.setSize())
        problems.push(`${node.name} set size ${node.store.setSize()} != ${total}`);
    }
    return problems.slice(0, 10);
  }

  /** No node holds the like, and a dot of it died with a wiped disk before it left that disk. */
  private onlyLostCopies(ack: Acknowledged): boolean {
    const { post, user } = ack.like;
    return (
      this.lostWithDisk.has(likeKey(post, user)) &&
      !this.nodes.some((n) => n.store.liked(post, user))
    );
  }
}
