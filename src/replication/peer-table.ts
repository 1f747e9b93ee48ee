// The peers this node replicates with: who they are (membership), whether they answer (up,
// down, retried with backoff) and what each is known to hold. The other parts of the core read
// it, and learn through PeerEvents when something changes.
import type { Digest } from "../crdt/index.js";
import type { Logger } from "../telemetry/types.js";
import { believable } from "./limits.js";
import { PeerState, type RefusalSide } from "./peer-state.js";
import { Refusals, refusalSide } from "./refusals.js";
import { type Clock, type Membership, type PeerAddress, type Random, type Timer } from "./ports.js";
import type { Sender } from "./protocol.js";

/**
 * Backoff of a failing peer: the first retry after this, doubling up to the max. The max bounds
 * how long a healed partition waits for its first retry (each waits half to all of it): at
 * 500 ms, heals after a 5 s partition took 160-410 ms, most of it waiting (bench/sections/
 * convergence.ts, with 'peer up' and the retries timed in the nodes' logs). A probe of a peer
 * that is still gone costs a refused or dropped connection, 4 to 8 a second.
 */
export const DEFAULT_RETRY_BASE_MS = 50;
export const DEFAULT_RETRY_MAX_MS = 250;
/** A skew worth a log line: it shifts every lag figure, and past an hour entries are refused. */
const SKEW_WARN_MS = 10_000;
const SKEW_LOG_EVERY_MS = 60_000;

export interface PeerEvents {
  /** A new peer appeared in the membership. */
  added(peer: PeerState): void;
  /** A peer answered after failing: exchange everything now rather than at random. */
  back(peer: PeerState): void;
  /** A failing peer's retry is due. */
  retry(peer: PeerState): void;
  /** A peer left the membership. */
  removed(peer: PeerState): void;
  /** What the peers are known to hold, or who they are, changed. */
  changed(): void;
}

export interface PeerTableDeps {
  readonly self: Sender;
  /** What this node holds: a peer's claims are believed only as far as limits.ts says. */
  readonly holds: () => Digest;
  readonly membership: Membership;
  readonly clock: Clock;
  /** Jitters the retry backoff (the simulation's seeded one; Math.random if none). */
  readonly random?: Random;
  readonly logger: Logger;
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
}

export class PeerTable {
  private readonly peers = new Map<PeerAddress, PeerState>();
  private membershipSeen: readonly PeerAddress[] | undefined;
  private running = false;
  private events: PeerEvents | undefined;

  private readonly refusals: Refusals;

  constructor(private readonly deps: PeerTableDeps) {
    this.refusals = new Refusals({
      self: deps.self.origin,
      clock: deps.clock,
      logger: deps.logger,
      jittered: (ms) => this.jittered(ms),
      retryIn: (peer, ms, done) => this.retryIn(peer, ms, done),
      changed: () => this.events?.changed(),
    });
  }

  start(events: PeerEvents): void {
    this.events = events;
    this.running = true;
    this.refresh();
  }

  stop(): void {
    this.running = false;
    for (const peer of this.peers.values()) {
      peer.retry?.cancel();
      peer.endRefusals();
    }
  }

  /** Peers other than this node. */
  live(): PeerState[] {
    return [...this.peers.values()].filter((p) => !p.isSelf);
  }

  /** Called for each incoming request: a loop, not live()'s copy of the table. */
  byOrigin(origin: string): PeerState | undefined {
    for (const peer of this.peers.values()) if (!peer.isSelf && peer.origin === origin) return peer;
    return undefined;
  }

  /** Whether a peer that is not this node passes `test`; without copying the table. */
  some(test: (peer: PeerState) => boolean): boolean {
    for (const peer of this.peers.values()) if (!peer.isSelf && test(peer)) return true;
    return false;
  }

  /** Lowest seq of `origin` that every peer is known to hold (Infinity without peers). */
  heldEverywhere(origin: Sender["origin"]): number {
    let min = Infinity;
    for (const peer of this.peers.values())
      if (!peer.isSelf && peer.ackedOf(origin) < min) min = peer.ackedOf(origin);
    return min;
  }

  /** Lowest own seq sent to every peer (Infinity without peers). */
  pushedEverywhere(): number {
    let min = Infinity;
    for (const peer of this.peers.values())
      if (!peer.isSelf && peer.pushedUpTo < min) min = peer.pushedUpTo;
    return min;
  }

  /** Follows the membership: new addresses become peers, gone ones are forgotten. */
  refresh(): void {
    const current = this.deps.membership.peers();
    if (current === this.membershipSeen) return;
    this.membershipSeen = current;
    const wanted = new Set(current);
    for (const [address, peer] of this.peers)
      if (!wanted.has(address)) {
        peer.retry?.cancel();
        peer.endRefusals();
        this.peers.delete(address);
        this.events?.removed(peer);
      }
    for (const address of wanted)
      if (!this.peers.has(address)) {
        const peer = new PeerState(address);
        this.peers.set(address, peer);
        if (this.running) this.events?.added(peer);
      }
    this.events?.changed();
  }

  /** A successful exchange: `sender` answered, holding at least `vv` when given. */
  contacted(peer: PeerState, sender: Sender, vv: Digest | undefined): void {
    const { self, holds, clock } = this.deps;
    const claim = vv && believable(vv, holds(), self.origin);
    this.reached(peer, peer.contact(sender, claim, clock.now(), self.origin));
    this.events?.changed();
  }

  /** The peer answered: its link's retry is moot, and a peer that was down is back. */
  private reached(peer: PeerState, wasDown: boolean): void {
    peer.retry?.cancel();
    peer.retry = undefined;
    if (!wasDown) return;
    this.deps.logger.info("peer up", { peer: peer.label, address: peer.address });
    this.events?.back(peer);
    this.probeOthersNow(peer);
  }

  failed(peer: PeerState, what: string, error: unknown): void {
    // The node is stopping (its links close, its store with them), or the peer left the
    // membership (its link closed under an exchange): nothing to record.
    if (!this.running || this.peers.get(peer.address) !== peer) return;
    const side = refusalSide(error);
    if (side) {
      this.refusals.refused(peer, side, what, error);
      // The peer's own refusal is an answer: a down peer probed is up again, held (above) so
      // that its return asks nothing of it; its refusals in a row go on. This node's refusal of
      // what it sent may come after the link broke: that says nothing of the peer.
      if (side === "sent") this.reached(peer, peer.answered(this.deps.clock.now()));
      return;
    }
    const wasUp = peer.up !== false;
    const delay = peer.failed(
      this.deps.self.origin,
      this.deps.retryBaseMs ?? DEFAULT_RETRY_BASE_MS,
      this.deps.retryMaxMs ?? DEFAULT_RETRY_MAX_MS,
    );
    if (wasUp)
      this.deps.logger.warn("peer down", {
        peer: peer.label,
        address: peer.address,
        during: what,
        error: String(error),
      });
    if (peer.retry) return;
    peer.retry = this.retryIn(peer, this.jittered(delay), () => (peer.retry = undefined));
  }

  /** Jittered (half to all of the delay): peers that failed at once do not retry in step. */
  private jittered(delay: number): number {
    return delay * (0.5 + 0.5 * (this.deps.random ?? Math.random)());
  }

  /** An exchange with the peer in `ms` (`done` first clears the timer's slot). */
  private retryIn(peer: PeerState, ms: number, done: () => void): Timer {
    return this.deps.clock.setTimeout(() => {
      done();
      this.events?.retry(peer);
    }, ms);
  }

  /**
   * One peer answering again most often means a partition healed, or this node's own network
   * came back: the other peers that are down are probed now rather than at the end of their
   * backoff (up to its max), which would otherwise decide how long the heal takes. A peer that
   * is still gone fails its probe and waits out its backoff as before.
   */
  private probeOthersNow(back: PeerState): void {
    for (const peer of this.peers.values()) {
      if (peer === back || peer.isSelf || peer.up !== false || !peer.retry) continue;
      peer.retry.cancel();
      peer.retry = undefined;
      this.events?.retry(peer);
    }
  }

  /** What a peer refused passed (refusals.ts). */
  accepted(peer: PeerState, side: RefusalSide): void {
    this.refusals.accepted(peer, side);
  }

  /** The transport's link to `address` broke: the peer is down until an exchange succeeds. */
  linkDown(address: PeerAddress, error: unknown): void {
    const peer = this.peers.get(address);
    if (peer && !peer.isSelf && peer.up !== false) this.failed(peer, "link", error);
  }

  /**
   * A peer's clock as its link's handshake showed it. Links authenticate without a clock, so a
   * skew does not partition; it shifts the lag figures, and entries stamped over an hour ahead
   * are refused (limits.ts). Shown on /cluster and as a metric, and logged once a minute per
   * peer past SKEW_WARN_MS.
   */
  clockSkew(address: PeerAddress, skewMs: number): void {
    const peer = this.peers.get(address);
    if (!peer) return;
    peer.clockSkewMs = skewMs;
    const now = this.deps.clock.now();
    if (Math.abs(skewMs) < SKEW_WARN_MS || now - peer.skewLoggedAt < SKEW_LOG_EVERY_MS) return;
    peer.skewLoggedAt = now;
    this.deps.logger.warn("peer clock skew", {
      peer: peer.label,
      address,
      skewMs,
      note: "lag figures are off by the skew; entries stamped over an hour ahead are refused",
    });
  }

  /** The least of `of` over the peers that are not this node, and `cap`; without copying the table. */
  least(of: (peer: PeerState) => number, cap: number): number {
    let min = cap;
    for (const peer of this.peers.values()) if (!peer.isSelf) min = Math.min(min, of(peer));
    return min;
  }
}
