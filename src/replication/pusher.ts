// Eager push of own entries, paced per peer. A new entry goes to a peer at once when nothing
// was pushed to it for LIKES_PUSH_MS (latency at low rates); what arrives within LIKES_PUSH_MS
// of a push goes out together LIKES_PUSH_MS after it (batching at high rates, whatever the
// round trip), and a full batch at once. Pushes to the peers leave together (flush() says how).
// What a writer waits for (replicas of its like, or a hand-off before a stop) goes to each peer
// as soon as no push to it is in flight. At most PUSH_WINDOW pushes are in flight to a peer:
// past that, what is new waits for their answers. A peer that pushes to this node gets what
// it lacks of ours on the answer (a ride), and acknowledges it with its next push: under load,
// each pair of nodes exchanges one push a pace, not two (ride() says how).
import type { Entry } from "../crdt/index.js";
import type { Store } from "../store/index.js";
import { pushSpan } from "../telemetry/spans.js";
import { Outbox } from "./outbox.js";
import type { PeerState } from "./peer-state.js";
import type { PeerTable } from "./peer-table.js";
import type { Clock, Timer, Transport } from "./ports.js";
import { MAX_PUSH_ENTRIES, type DeltasReply, type DeltasRequest, type Sender } from "./protocol.js";

/** Pushes in flight to one peer at most: with MAX_PUSH_ENTRIES, what a slow peer can hold up. */
export const PUSH_WINDOW = 4;
/**
 * A ride not acknowledged within this many paces (RIDE_MIN_TIMEOUT_MS at least) was lost: the
 * peer refused it, or its link broke. What it carried is sent again.
 */
const RIDE_TIMEOUT_PACES = 8;
const RIDE_MIN_TIMEOUT_MS = 100;
/**
 * Paces an acknowledgement of a ride waits for a push of entries to go with, before it goes
 * alone: under load nearly every pace has entries to push, and a push of nothing but an
 * acknowledgement would be a message per pace again.
 */
const ACK_ALONE_PACES = 2;

export interface PusherDeps {
  readonly self: Sender;
  readonly store: Pick<Store, "digest" | "entries">;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly peers: PeerTable;
  readonly pushMs: number;
  /** LIKES_FAULTS: whether pushes to a peer (by node name) are paused; anti-entropy still pulls. */
  readonly pushPaused?: (peer: string | undefined) => boolean;
  /**
   * LIKES_FAULTS: whether any fault is set toward a peer. Nothing rides to it then: faults act on
   * this node's own requests, and its likes must go by them to meet the faults.
   */
  readonly faulted?: (peer: string | undefined) => boolean;
  /** Applies the entries that rode on a peer's answer; false when they were refused. */
  readonly applyRide: (peer: PeerState, reply: DeltasReply) => Promise<boolean>;
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

  /**
   * Sends entries (and what it acknowledges of a ride) to a peer inside a push span, learns
   * from the reply what it holds, and applies what rode on the reply.
   */
  async send(
    peer: PeerState,
    entries: readonly Entry[],
    acks?: DeltasRequest["acks"],
  ): Promise<DeltasReply> {
    const { self, transport, peers } = this.deps;
    const request: DeltasRequest = acks
      ? { kind: "deltas", ...self, entries, acks }
      : { kind: "deltas", ...self, entries };
    const reply = await pushSpan(peer.label, entries, () => transport.send(peer.address, request));
    peers.contacted(peer, reply, reply.vv);
    if (reply.entries) void this.tookRide(peer, reply);
    return reply;
  }

  /**
   * Own entries that ride on the answer to a push from `peer`: what it lacks of ours (a push's
   * worth), unless a push to it is in flight (the answer travels on the other link of the pair,
   * and could overtake it: a gap the peer would not take past; rides, on one link, arrive in
   * order), or someone waits for them (those go by a push of their own at once), or pushes to
   * it are paused or held. A ride the peer has not acknowledged within RIDE_TIMEOUT_PACES was
   * lost, and what the peer lacks goes again. After a ride, this node's own next push to the
   * peer waits for the peer's next push (deferral() says how long), and what is new rides on
   * that answer in turn. So under load the pushes of a pair of nodes go one way, at one pace,
   * and the answers carry the other way's; at low rates each node pushes its own at once, as
   * before. The push also counts as one of ours that is due (flush()): pushes to other peers
   * that are nearly due leave with the answer, so that the pushes a node waits for come in step.
   */
  ride(peer: PeerState): readonly Entry[] {
    const now = this.deps.clock.now();
    peer.pushedHereAt = now;
    const entries = this.rideOf(peer, now);
    if (this.running) {
      this.cancelTimer();
      this.flush(true);
    }
    return entries;
  }

  private rideOf(peer: PeerState, now: number): readonly Entry[] {
    const { self } = this.deps;
    // Forgets the rides it acknowledged, and sends again from what it holds if one was lost.
    this.rideLeft(peer, now);
    const after = Math.max(peer.pushedUpTo, peer.ackedOf(self.origin));
    const own = this.ownSeq();
    const rides =
      own > after && peer.pushesInFlight === 0 && this.awaitedUpTo <= after && this.ridesTo(peer);
    const entries = rides ? this.ownEntries(after, own) : [];
    const last = entries.at(-1);
    // A bare answer: the peer may not push again soon, so this node's own pushes keep its pace.
    peer.lastPushRode = last !== undefined;
    if (!last) return [];
    peer.pushedUpTo = last.seq;
    peer.lastPushAt = now;
    peer.rides.push({ upTo: last.seq, at: now });
    return entries;
  }

  /**
   * Whether own likes may ride to the peer: not while pushes to it are paused or held, while
   * a fault is set toward it, or after a ride of ours went unacknowledged (ridesStopped).
   */
  private ridesTo(peer: PeerState): boolean {
    return (
      this.running &&
      !peer.ridesStopped &&
      !this.held(peer) &&
      !(this.deps.faulted?.(peer.node) ?? false)
    );
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
   * Milliseconds until a push may go to the peer: 0 once its last push is LIKES_PUSH_MS old and
   * the peer's next push is not awaited (deferral()), or when the clock went back past it.
   */
  private waitFor(peer: PeerState, now: number): number {
    const since = now - peer.lastPushAt;
    return since < 0 ? 0 : Math.max(0, this.deps.pushMs - since, this.deferral(peer, now));
  }

  /**
   * Milliseconds this node's own push to the peer waits for the peer's next push instead, on
   * whose answer what is new rides: until half a pace after that push is due. It is due after
   * a ride (the peer acknowledges it with its next push, within a pace); and, for the node of
   * the pair whose origin sorts last, after any push from the peer, which then sets the pair's
   * pace: were both to push at their own, each would push before the other's push arrived, and
   * nothing would ride.
   */
  private deferral(peer: PeerState, now: number): number {
    const rode = peer.lastPushRode ? peer.lastPushAt : -Infinity;
    const follows =
      peer.origin !== undefined && peer.origin < this.deps.self.origin && this.ridesTo(peer);
    const anchor = Math.max(rode, follows ? peer.pushedHereAt : -Infinity);
    // Never longer than from now: the clock may have gone back past the anchor.
    const deferred = 1.5 * this.deps.pushMs;
    return Math.min(deferred, anchor + deferred - now);
  }

  /** Milliseconds until a ride to the peer would be lost (peer-state.ts), if one is on its way. */
  private rideLeft(peer: PeerState, now: number): number {
    const timeout = Math.max(RIDE_MIN_TIMEOUT_MS, RIDE_TIMEOUT_PACES * this.deps.pushMs);
    return peer.rideLeft(this.deps.self.origin, now, timeout);
  }

  /** A peer's ride was applied: the acknowledgement goes with the next push to it, at its pace. */
  private async tookRide(peer: PeerState, reply: DeltasReply): Promise<void> {
    if (!(await this.deps.applyRide(peer, reply))) return;
    const now = this.deps.clock.now();
    peer.ackOwedSince ??= now;
    this.schedule(this.waitFor(peer, now));
  }

  /** Milliseconds until the first pushable peer is due (LIKES_PUSH_MS at most). */
  private nextDue(now: number): number {
    const of = (peer: PeerState) => (this.pushable(peer) ? this.waitFor(peer, now) : Infinity);
    return this.deps.peers.least(of, this.deps.pushMs);
  }

  /** Own entries (after, upTo], a push's worth: from the outbox, else read from the store. */
  private ownEntries(after: number, upTo: number): readonly Entry[] {
    const { self, store } = this.deps;
    return (
      this.outbox.take(after, upTo) ??
      store.entries({ origin: self.origin, after, upTo }, MAX_PUSH_ENTRIES)
    );
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
   * often than every half pace. A push just `heard` from a peer counts as one that is due.
   */
  private flush(heard = false): void {
    const { peers, self, clock, pushMs } = this.deps;
    peers.refresh();
    const own = this.ownSeq();
    const now = clock.now();
    const lacking: { peer: PeerState; after: number; wait: number }[] = [];
    let due = heard;
    let held = Infinity;
    for (const peer of peers.live()) {
      // A down peer is probed by its retry timer, not flooded with pushes; a full window goes
      // on when a push of it is answered.
      if (!this.pushable(peer)) continue;
      // A ride unacknowledged: looked at again when it would be lost.
      held = Math.min(held, this.rideLeft(peer, now));
      const after = Math.max(peer.pushedUpTo, peer.ackedOf(self.origin));
      const waiting = own - after;
      const owedSince = peer.ackOwedSince;
      if (waiting <= 0 && owedSince === undefined) continue;
      const awaited = after < this.awaitedUpTo && peer.pushesInFlight === 0;
      let wait = waiting >= MAX_PUSH_ENTRIES || awaited ? 0 : this.waitFor(peer, now);
      // An acknowledgement alone waits for entries to go with, ACK_ALONE_PACES at most.
      if (waiting <= 0 && owedSince !== undefined) {
        const alone = ACK_ALONE_PACES * pushMs;
        wait = Math.max(wait, Math.min(alone, owedSince + alone - now));
      }
      due ||= wait === 0;
      lacking.push({ peer, after, wait });
    }
    for (const { peer, after, wait } of lacking) {
      // A peer whose push to us is awaited does not go along.
      const along = due && wait <= pushMs / 2 && this.deferral(peer, now) <= 0;
      if (wait === 0 || along) void this.pushTo(peer, after, own);
      else held = Math.min(held, wait);
    }
    if (held < Infinity) this.schedule(held);
  }

  /** Pushes own entries (after, upTo] to the peer, and the acknowledgement of a ride it owes. */
  private async pushTo(peer: PeerState, after: number, upTo: number): Promise<void> {
    const { store, self, peers } = this.deps;
    const entries = after >= upTo ? [] : this.ownEntries(after, upTo);
    this.outbox.dropUpTo(peers.pushedEverywhere());
    const last = entries.at(-1);
    const acks =
      peer.ackOwedSince !== undefined && peer.origin !== undefined
        ? new Map([[peer.origin, store.digest().get(peer.origin) ?? 0]])
        : undefined;
    if (!last && !acks) return;
    peer.ackOwedSince = undefined;
    peer.pushesInFlight++;
    if (last) peer.pushedUpTo = last.seq;
    peer.lastPushAt = this.deps.clock.now();
    peer.lastPushRode = false;
    try {
      const reply = await this.send(peer, entries, acks);
      // Not taken past a gap (an earlier push was lost or overtaken): sent again from what
      // the peer holds, now (whatever the pace), rather than at the next anti-entropy round.
      const held = reply.vv.get(self.origin) ?? 0;
      // Taken: our likes may ride to it again.
      if (last && held >= last.seq) peer.ridesStopped = false;
      if (last && held < last.seq) {
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
