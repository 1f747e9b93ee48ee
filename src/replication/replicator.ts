// The replication core, wired from its parts: the peer table, the eager pusher, anti-entropy,
// the writers waiting for replicas and the convergence tracker. Free of I/O: it reaches the
// network, time and randomness only through its ports, so the simulation drives it as it is.
import { encodeDigest, type Digest, type Entry, type Like } from "../crdt/index.js";
import type { Store } from "../store/index.js";
import { storeSpan } from "../telemetry/spans.js";
import { activeTraceparent } from "../telemetry/trace-context.js";
import { noMetrics, type Logger, type Metrics } from "../telemetry/types.js";
import { AntiEntropy, applyFromPeer } from "./anti-entropy.js";
import { ConvergenceTracker } from "./convergence.js";
import type { PeerState } from "./peer-state.js";
import { PeerTable } from "./peer-table.js";
import {
  DEFAULT_PEER_LIMITS,
  PeerLimitError,
  RefusalLog,
  checkEntries,
  type PeerLimits,
} from "./limits.js";
import type { Clock, Membership, PeerAddress, Random, Transport } from "./ports.js";
import {
  answerDeltas,
  answerSync,
  type DeltasReply,
  type DeltasRequest,
  type PeerReply,
  type ReplicationRequest,
  type Sender,
  type SyncRequest,
} from "./protocol.js";
import { Pusher } from "./pusher.js";
import {
  WritesStoppedError,
  type ClusterView,
  type Consistency,
  type WriteOutcome,
} from "./types.js";
import { WriteWaiters } from "./write-waiters.js";

export type { ClusterView, Consistency, PeerView, WriteOutcome } from "./types.js";

/** What the replication core is given: its ports and its settings. */
export interface ReplicatorDeps {
  readonly store: Store;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly random: Random;
  readonly membership: Membership;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** LIKES_PUSH_MS: the longest a new entry waits before its push. */
  readonly pushMs: number;
  /** LIKES_SYNC_MS: the mean interval between anti-entropy rounds. */
  readonly syncMs: number;
  /** What a peer may make this node hold (limits.ts). */
  readonly limits?: PeerLimits;
  /** Retry backoff of a failing peer: base doubling up to max (ms). */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  /** LIKES_FAULTS: whether this node's pushes to a peer (by node name) are paused. */
  readonly pushPaused?: (peer: string | undefined) => boolean;
  /** LIKES_FAULTS: whether any fault is set toward a peer: nothing rides to it (pusher.ts). */
  readonly faulted?: (peer: string | undefined) => boolean;
}

/**
 * Eager push of own entries to every peer, and version-vector anti-entropy with one random
 * peer per round; answers peers' messages through the protocol's functions.
 */
export class Replicator {
  private readonly self: Sender;
  private readonly store: Store;
  private readonly transport: Transport;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly peers: PeerTable;
  private readonly pusher: Pusher;
  private readonly antiEntropy: AntiEntropy;
  private readonly waiters: WriteWaiters;
  private readonly convergence: ConvergenceTracker;
  private readonly metrics: Metrics;
  private readonly syncMs: number;
  private readonly limits: PeerLimits;
  private readonly refusals: RefusalLog;
  /** What applying a peer's entries needs (anti-entropy.ts). */
  private readonly applier: Parameters<typeof applyFromPeer>[0];
  private running = false;
  /**
   * False once the stop's hand-off (or the stop) began: a like committed after it would be held
   * by this node alone, so it is refused instead.
   */
  private accepting = true;
  /** Likes being committed now; the hand-off waits until they are published. */
  private committing = 0;
  private committed: (() => void) | undefined;

  constructor(deps: ReplicatorDeps) {
    const { store, transport, clock, random, membership, logger } = deps;
    this.transport = transport;
    this.self = { node: store.nodeName, origin: store.origin };
    this.store = store;
    this.clock = clock;
    this.logger = logger;
    this.metrics = deps.metrics ?? noMetrics;
    this.syncMs = deps.syncMs;
    this.applier = { store, clock, logger, metrics: this.metrics };
    this.limits = deps.limits ?? DEFAULT_PEER_LIMITS;
    this.refusals = new RefusalLog(
      () => clock.now(),
      (message, fields) => logger.warn(message, fields),
    );
    this.peers = new PeerTable({
      self: this.self,
      holds: () => store.digest(),
      membership,
      clock,
      random,
      logger,
      ...(deps.retryBaseMs === undefined ? {} : { retryBaseMs: deps.retryBaseMs }),
      ...(deps.retryMaxMs === undefined ? {} : { retryMaxMs: deps.retryMaxMs }),
    });
    const peers = this.peers;
    this.pusher = new Pusher({
      self: this.self,
      store,
      transport,
      clock,
      peers,
      pushMs: deps.pushMs,
      ...(deps.pushPaused === undefined ? {} : { pushPaused: deps.pushPaused }),
      ...(deps.faulted === undefined ? {} : { faulted: deps.faulted }),
      applyRide: (peer, reply) => this.applyRide(peer, reply),
    });
    this.antiEntropy = new AntiEntropy({
      self: this.self,
      store,
      transport,
      clock,
      random,
      logger,
      metrics: this.metrics,
      peers,
      pusher: this.pusher,
      syncMs: deps.syncMs,
      limits: this.limits,
      refusals: this.refusals,
    });
    this.waiters = new WriteWaiters(clock, (seq) => this.acksFor(seq));
    this.convergence = new ConvergenceTracker(this.metrics);
  }

  start(): void {
    this.running = true;
    this.antiEntropy.start();
    this.pusher.start();
    this.peers.start({
      // Greeted, then synced with at once: a node that starts behind (restarted, or new)
      // pulls what it lacks as soon as a peer answers, not at its first random round.
      added: (peer) =>
        void this.pusher
          .greet(peer)
          .then(() => (peer.up === true ? this.antiEntropy.syncWith(peer) : undefined)),
      back: (peer) => void this.antiEntropy.syncWith(peer),
      retry: (peer) => void this.antiEntropy.syncWith(peer),
      removed: (peer) => this.transport.forget?.(peer.address),
      changed: () => this.settle(),
    });
  }

  stop(): void {
    this.running = false;
    this.accepting = false;
    this.pusher.stop();
    this.antiEntropy.stop();
    this.peers.stop();
    this.waiters.stop();
  }

  /**
   * Before a graceful stop: pushes what the pace still holds to every peer that is up and
   * waits until each holds all of this node's entries, or `timeoutMs` passes. A like accepted
   * just before the stop is then not held by this node alone when its disk goes with it (a pod
   * scaled down with its volume).
   */
  async handOff(timeoutMs: number): Promise<void> {
    const deadline = this.clock.now() + timeoutMs;
    this.accepting = false;
    this.logger.info("handing off to peers", { waitMs: timeoutMs });
    // A like being committed now is pushed with the rest: its entry is published first.
    if (this.committing > 0)
      await new Promise<void>((resolve) => {
        const timer = this.clock.setTimeout(resolve, timeoutMs);
        this.committed = () => {
          timer.cancel();
          resolve();
        };
      });
    for (;;) {
      const own = this.store.digest().get(this.self.origin) ?? 0;
      const left = deadline - this.clock.now();
      // Peers that can take a push now, and those that hold it already.
      const reachable = this.peers
        .live()
        .filter(
          (p) => p.ackedOf(this.self.origin) >= own || (p.up === true && !this.pusher.held(p)),
        ).length;
      if (!this.running || own === 0 || left <= 0 || this.acksFor(own) >= 1 + reachable) return;
      this.pusher.drain();
      await this.waiters.wait(own, 1 + reachable, left);
    }
  }

  /** Peers other than this node. */
  peerCount(): number {
    return this.peers.live().length;
  }

  /**
   * Accepts a like first-hand: commits it, pushes it, and waits until `consistency` nodes hold
   * it or `timeoutMs` passes. A repeat of a like already held needs no new dot and no wait.
   */
  async write(like: Like, consistency: Consistency, timeoutMs: number): Promise<WriteOutcome> {
    if (!this.accepting) throw new WritesStoppedError();
    const required = this.required(consistency);
    // The entry carries the request's context, so every node that applies it joins its trace.
    const traceparent = activeTraceparent();
    this.committing++;
    let entry;
    try {
      ({ entry } = await storeSpan(() => this.store.accept(like, this.clock.now(), traceparent)));
      if (entry) {
        this.logger.debug("like accepted", { post: like.post, user: like.user, seq: entry.seq });
        this.pusher.published(entry);
        this.convergence.add(entry);
      }
    } finally {
      if (--this.committing === 0) this.committed?.();
    }
    if (!entry) return { isNew: false, acks: required, required };
    if (required <= 1) return { isNew: true, acks: 1, required };
    let acks = this.acksFor(entry.seq);
    if (acks < required && this.running) {
      this.pusher.now();
      acks = await this.waiters.wait(entry.seq, required, timeoutMs);
    }
    return { isNew: true, acks, required };
  }

  /** Injected faults changed: what a paused push held back goes out now. */
  faultsChanged(): void {
    this.pusher.now();
  }

  /** A peer's clock minus this node's, as the transport measured it when its link opened. */
  clockSkew(address: PeerAddress, skewMs: number): void {
    this.peers.clockSkew(address, skewMs);
  }

  /** The transport's link to a peer broke: it is down (and retried) until an exchange succeeds. */
  linkDown(address: PeerAddress, error: unknown): void {
    this.peers.linkDown(address, error);
  }

  /** Nodes (this one included) that hold own entry `seq`. */
  acksFor(seq: number): number {
    let acks = 1;
    for (const peer of this.peers.live()) if (peer.ackedOf(this.self.origin) >= seq) acks++;
    return acks;
  }

  /** Nodes needed for a consistency level, this one included. */
  required(level: Consistency): number {
    const n = 1 + this.peerCount();
    return level === "local" ? 1 : level === "all" ? n : Math.floor(n / 2) + 1;
  }

  /** Answers a peer's request. */
  handle(request: ReplicationRequest): Promise<PeerReply> {
    if (request.kind === "deltas") return this.onDeltas(request);
    // A store that fails as it is read (damaged) rejects, and the link answers that as an error
    // (storage_corrupt) rather than closing.
    return new Promise((resolve) => resolve(this.onSync(request)));
  }

  view(): ClusterView {
    const have = this.store.digest();
    return {
      node: this.self.node,
      origin: this.self.origin,
      vv: encodeDigest(have),
      peers: this.peers.live().map((p) => p.view(have)),
    };
  }

  private async onDeltas(request: DeltasRequest): Promise<PeerReply> {
    await this.applyPushed(request.entries, request);
    const { reply, senderHolds } = answerDeltas(this.self, request, this.store);
    // What it acknowledges first: a ride it took frees the next.
    const peer = this.heardFrom(request, senderHolds);
    const ride = peer && this.running ? this.pusher.ride(peer) : [];
    return ride.length > 0 ? { ...reply, entries: ride } : reply;
  }

  /**
   * A peer's own entries, pushed or riding on an answer (`from` says which): checked against
   * the limits, a refusal counted and logged, then applied.
   */
  private async applyPushed(entries: readonly Entry[], from: DeltasRequest | DeltasReply) {
    try {
      checkEntries(entries, this.store.digest(), this.clock.now(), this.limits);
    } catch (error) {
      if (error instanceof PeerLimitError) {
        this.metrics.peerMessage(from.kind, "rejected");
        this.refusals.refused(from.node, error);
      }
      throw error;
    }
    await applyFromPeer(this.applier, entries, "push", from);
  }

  /**
   * Entries that rode on a peer's answer to our push, taken as a push from it would be; false
   * (and the peer held, as for a refused page) when they were refused.
   */
  private async applyRide(peer: PeerState, reply: DeltasReply): Promise<boolean> {
    try {
      await this.applyPushed(reply.entries ?? [], reply);
      return true;
    } catch (error) {
      this.peers.failed(peer, "ride", error);
      return false;
    }
  }

  private onSync(request: SyncRequest): PeerReply {
    const reply = answerSync(this.self, request, this.store);
    const peer = this.heardFrom(request, request.vv);
    // While it pulls page after page from us (it asks for more, or for a catch-up's window),
    // pushing it the same pages would double the work.
    if (peer && (reply.more || request.window)) peer.pullingUntil = this.clock.now() + this.syncMs;
    return reply;
  }

  /** A request tells who the caller is and, for a sync, what it holds. */
  private heardFrom(sender: Sender, holds: Digest | undefined): PeerState | undefined {
    const peer = this.peers.byOrigin(sender.origin);
    if (peer) this.peers.contacted(peer, sender, holds);
    return peer;
  }

  /** Reports own entries now held everywhere and answers the writers waiting for replicas. */
  private settle(): void {
    this.convergence.settle(this.peers.heldEverywhere(this.self.origin), this.clock.now());
    this.waiters.settle();
  }
}
