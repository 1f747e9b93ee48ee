// Eager push of own entries, paced per peer. A new entry goes to a peer at once when nothing
// was pushed to it for LIKES_PUSH_MS (latency at low rates); what arrives within LIKES_PUSH_MS
// of a push goes out together LIKES_PUSH_MS after it (batching at high rates, whatever the
// round trip), and a full batch at once. Pushes to the peers leave together (flush() says how).
// What a writer waits for (replicas of its like, or a hand-off before a stop) goes to each peer
// as soon as no push to it is in flight. At most PUSH_WINDOW pushes are in flight to a peer:
// past that, what is new waits for their answers.
import type { Entry } from "../crdt/index.js";
import type { Store } from "../store/index.js";
import { pushSpan } from "../telemetry/spans.js";
import { Outbox } from "./outbox.js";
import type { PeerState } from "./peer-state.js";
import type { PeerTable } from "./peer-table.js";
import type { Clock, Timer, Transport } from "./ports.js";
import { MAX_PUSH_ENTRIES, type DeltasReply, type Sender } from "./protocol.js";

/** Pushes in flight to one peer at most: with MAX_PUSH_ENTRIES, what a slow peer can hold up. */
export const PUSH_WINDOW = 4;

export interface PusherDeps {
  readonly self: Sender;
  readonly store: Pick<Store, "digest" | "entries">;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly peers: PeerTable;
  readonly pushMs: number;
  /** LIKES_FAULTS: whether pushes to a peer (by node name) are paused; anti-entropy still pulls. */
  readonly pushPaused?: (peer: string | undefined) => boolean;
}

export class Pusher {
  private readonly outbox = new Outbox();
  private timer: Timer | undefined;
  /** When the timer fires (clock ms). */
  private timerAt = Infinity;
  private running = false;
  /**
   * The last own seq someone waits for peers to hold (a writer for replicas; a stop, every
   * one): a peer that lacks it is pushed to whenever no push to it is in flight, not at the pace.
   */
  private awaitedUpTo = 0;

  constructor(private readonly deps: PusherDeps) {}

  start(): void {
    this.running = true;
    // Whatever was accepted before a restart and not yet acknowledged goes out once the
    // replicator has started the rest (the peer table first: its new peers are greeted).
    this.schedule(0);
  }

  stop(): void {
    this.running = false;
    this.cancelTimer();
  }

  /**
   * A like this node accepted first-hand (committed): pushed at once to a peer whose last push
   * is LIKES_PUSH_MS old, LIKES_PUSH_MS after its last push otherwise (or with another peer's,
   * flush() says when), at once past a batch.
   */
  published(entry: Entry): void {
    this.outbox.add(entry);
    const sent = Math.min(this.deps.peers.pushedEverywhere(), entry.seq);
    const wait = this.nextDue(this.deps.clock.now());
    if (wait === 0 || entry.seq - sent >= MAX_PUSH_ENTRIES) this.flushNow();
    // When the first peer is due (a timer set for a later one is brought forward).
    else this.schedule(wait);
  }

  /**
   * Push now, whatever the pace, what this node has accepted so far: a writer waits for
   * replicas, or a paused push may go again. A push in flight to a peer is followed by the
   * next as soon as it is answered.
   */
  now(): void {
    this.awaitedUpTo = Math.max(this.awaitedUpTo, this.ownSeq());
    this.flushNow();
  }

  /** The node is about to stop: from now on no push waits for the pace. */
  drain(): void {
    this.awaitedUpTo = Infinity;
    this.flushNow();
  }

  /** Whether pushes to a peer are paused by an injected fault. */
  paused(peer: PeerState): boolean {
    return this.deps.pushPaused?.(peer.node) ?? false;
  }

  /**
   * Whether nothing is pushed to a peer now: paused by a fault, or held after it refused what
   * this node sent (the retry at the end of its hold pushes what it lacks). A hold for what
   * this node refused of the peer stops syncs from it, not pushes to it.
   */
  held(peer: PeerState): boolean {
    return this.paused(peer) || (peer.refusals.sent > 0 && peer.held(this.deps.clock.now()));
  }

  /** Sends entries to a peer inside a push span, and learns from the reply what it holds. */
  async send(peer: PeerState, entries: readonly Entry[]): Promise<DeltasReply> {
    const { self, transport, peers } = this.deps;
    const reply = await pushSpan(peer.label, entries, () =>
      transport.send(peer.address, { kind: "deltas", ...self, entries }),
    );
    peers.contacted(peer, reply, reply.vv);
    return reply;
  }

  /**
   * An empty push to a new peer: both ends learn at once that the other is up and who it is,
   * rather than at the first write or random sync partner. It pulls nothing, so a joining
   * node's catch-up still comes from one peer at a time.
   */
  async greet(peer: PeerState): Promise<void> {
    // Paused pushes send nothing, not even this: anti-entropy finds the peer instead.
    if (this.paused(peer)) return;
    try {
      await this.send(peer, []);
    } catch (error) {
      this.deps.peers.failed(peer, "greeting", error);
    }
  }

  /**
   * Pushes before the caller goes on (a new like, a writer waiting for replicas, an answered
   * push): the frames leave in this turn, ahead of the answer to a like written in it.
   */
  private flushNow(): void {
    if (!this.running) return;
    this.cancelTimer();
    this.flush();
  }

  /** A flush in `ms`, unless one comes sooner. */
  private schedule(ms: number): void {
    if (!this.running) return;
    const at = this.deps.clock.now() + ms;
    if (this.timer && this.timerAt <= at) return;
    this.cancelTimer();
    this.timerAt = at;
    this.timer = this.deps.clock.setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.flush();
    }, ms);
  }

  private cancelTimer(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  /** A peer a push could go to now: not known to be down, its window not full, not held. */
  private pushable(peer: PeerState): boolean {
    return peer.up !== false && peer.pushesInFlight < PUSH_WINDOW && !this.held(peer);
  }

  /**
   * Milliseconds until a push may go to the peer: 0 once its last push is LIKES_PUSH_MS old, or
   * when the clock went back past it.
   */
  private waitFor(peer: PeerState, now: number): number {
    const since = now - peer.lastPushAt;
    return since < 0 ? 0 : Math.max(0, this.deps.pushMs - since);
  }

  /** Milliseconds until the first pushable peer is due (LIKES_PUSH_MS at most). */
  private nextDue(now: number): number {
    const of = (peer: PeerState) => (this.pushable(peer) ? this.waitFor(peer, now) : Infinity);
    return this.deps.peers.least(of, this.deps.pushMs);
  }

  private ownSeq(): number {
    return this.deps.store.digest().get(this.deps.self.origin) ?? 0;
  }

  /**
   * Pushes to each peer what it lacks, if its pace allows (or, when it lacks what someone
   * waits for, whenever no push to it is in flight), and sets the timer for the peers whose
   * pace does not yet. Pushes leave together: a peer within half its pace of being due goes
   * with one that is due, so that a like waits once for every peer, not the longest of several
   * paces out of step; going along brings the paces into step, and no peer is pushed to more
   * often than every half pace.
   */
  private flush(): void {
    const { peers, self, clock, pushMs } = this.deps;
    peers.refresh();
    const own = this.ownSeq();
    const now = clock.now();
    const lacking: { peer: PeerState; after: number; wait: number }[] = [];
    let due = false;
    for (const peer of peers.live()) {
      // A down peer is probed by its retry timer, not flooded with pushes; a full window goes
      // on when a push of it is answered.
      if (!this.pushable(peer)) continue;
      const after = Math.max(peer.pushedUpTo, peer.ackedOf(self.origin));
      const waiting = own - after;
      if (waiting <= 0) continue;
      const awaited = after < this.awaitedUpTo && peer.pushesInFlight === 0;
      const wait = waiting >= MAX_PUSH_ENTRIES || awaited ? 0 : this.waitFor(peer, now);
      due ||= wait === 0;
      lacking.push({ peer, after, wait });
    }
    let held = Infinity;
    for (const { peer, after, wait } of lacking) {
      if (wait === 0 || (due && wait <= pushMs / 2)) void this.pushTo(peer, after, own);
      else held = Math.min(held, wait);
    }
    if (held < Infinity) this.schedule(held);
  }

  private async pushTo(peer: PeerState, after: number, upTo: number): Promise<void> {
    const { store, self, peers } = this.deps;
    const entries =
      this.outbox.take(after, upTo) ??
      store.entries({ origin: self.origin, after, upTo }, MAX_PUSH_ENTRIES);
    this.outbox.dropUpTo(peers.pushedEverywhere());
    const last = entries.at(-1);
    if (!last) return;
    peer.pushesInFlight++;
    peer.pushedUpTo = last.seq;
    peer.lastPushAt = this.deps.clock.now();
    try {
      const reply = await this.send(peer, entries);
      // Not taken past a gap (an earlier push was lost or overtaken): sent again from what
      // the peer holds, now (whatever the pace), rather than at the next anti-entropy round.
      const held = reply.vv.get(self.origin) ?? 0;
      if (held < last.seq) {
        peer.pushedUpTo = Math.min(peer.pushedUpTo, held);
        peer.lastPushAt = -Infinity;
      }
    } catch (error) {
      peers.failed(peer, "push", error);
    } finally {
      peer.pushesInFlight--;
    }
    // What arrived while this push was in flight goes out now, or when its pace allows.
    if (peer.up && peer.pushedUpTo < this.ownSeq()) this.flushNow();
  }
}
