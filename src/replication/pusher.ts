// Eager push of own entries. A new entry goes to a peer at once when no push to it is in flight;
// what arrives while one is goes out together when it is answered (latency at low rates, batching
// at high ones) or after LIKES_PUSH_MS, whichever is first; a full batch goes out at once. At most
// PUSH_WINDOW pushes are in flight to a peer: past that, what is new waits for their answers.
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
  private running = false;

  constructor(private readonly deps: PusherDeps) {}

  start(): void {
    this.running = true;
    // Whatever was accepted before a restart and not yet acknowledged goes out once the
    // replicator has started the rest (the peer table first: its new peers are greeted).
    this.schedule(0);
  }

  stop(): void {
    this.running = false;
    this.timer?.cancel();
    this.timer = undefined;
  }

  /**
   * A like this node accepted first-hand (committed): pushed at once to a peer with no push in
   * flight, with the answer of the one in flight otherwise, at once past a batch.
   */
  published(entry: Entry): void {
    this.outbox.add(entry);
    const sent = Math.min(this.deps.peers.pushedEverywhere(), entry.seq);
    const idle = this.deps.peers.some(idleAndUp);
    if (idle || entry.seq - sent >= MAX_PUSH_ENTRIES) this.flushNow();
    else this.schedule(this.deps.pushMs);
  }

  /** Push now: a writer waits for replicas. */
  now(): void {
    this.flushNow();
  }

  /** Whether pushes to a peer are paused by an injected fault. */
  paused(peer: PeerState): boolean {
    return this.deps.pushPaused?.(peer.node) ?? false;
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
    this.timer?.cancel();
    this.timer = undefined;
    this.flush(false);
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    if (this.timer && ms > 0) return;
    this.timer?.cancel();
    this.timer = this.deps.clock.setTimeout(() => {
      this.timer = undefined;
      this.flush(ms > 0);
    }, ms);
  }

  private ownSeq(): number {
    return this.deps.store.digest().get(this.deps.self.origin) ?? 0;
  }

  /** Pushes to each peer what it lacks; `overdue`: entries have waited LIKES_PUSH_MS. */
  private flush(overdue: boolean): void {
    const { peers, self } = this.deps;
    peers.refresh();
    const own = this.ownSeq();
    for (const peer of peers.live()) {
      // A down peer is probed by its retry timer, not flooded with pushes.
      if (peer.up === false || peer.pushesInFlight >= PUSH_WINDOW || this.paused(peer)) continue;
      const after = Math.max(peer.pushedUpTo, peer.ackedOf(self.origin));
      // With a push in flight, a full or overdue batch goes before its answer; the rest waits.
      const waiting = own - after;
      if (waiting > 0 && (peer.pushesInFlight === 0 || overdue || waiting >= MAX_PUSH_ENTRIES))
        void this.pushTo(peer, after, own);
    }
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
    try {
      await this.send(peer, entries);
    } catch (error) {
      peers.failed(peer, "push", error);
    } finally {
      peer.pushesInFlight--;
    }
    // What arrived while this push was in flight goes out now.
    if (peer.up && peer.pushedUpTo < this.ownSeq()) this.flushNow();
  }
}

/** A peer a push would go to at once: none in flight, and not known to be down. */
function idleAndUp(peer: PeerState): boolean {
  return peer.pushesInFlight === 0 && peer.up !== false;
}
