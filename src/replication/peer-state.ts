// One peer's state as this node sees it: identity, liveness, and what it is known to hold.
import {
  encodeDigest,
  mergeDigests,
  type Digest,
  type NodeName,
  type OriginId,
} from "../crdt/index.js";
import type { PeerAddress, Timer } from "./ports.js";
import type { Sender } from "./protocol.js";
import type { PeerView } from "./types.js";

// Doublings of the retry backoff counted at most: past them the delay is at its max anyway, and
// 2 ** failures must not overflow for a peer down for days.
const MAX_BACKOFF_DOUBLINGS = 16;

/** The `count`th backoff of one that starts at `baseMs` and doubles up to `maxMs`. */
function backoff(count: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(count - 1, MAX_BACKOFF_DOUBLINGS));
}

/**
 * A refusal's side: the peer refused what this node sent it (`sent`), or this node refused what
 * the peer sent (`received`). Each ends only when entries pass that way again.
 */
export type RefusalSide = "sent" | "received";

/** What a node knows of one peer: who it is, whether it answers, and what it holds. */
export class PeerState {
  node: NodeName | undefined;
  origin: OriginId | undefined;
  /** Undefined until the first contact. */
  up: boolean | undefined;
  lastContact: number | undefined;
  /** The peer's version vector as last acknowledged: what it is known to hold. */
  acked: Map<OriginId, number> = new Map();
  /** Highest own seq sent to it (in flight or acknowledged). */
  pushedUpTo = 0;
  /** Pushes sent to it and not yet answered: at most PUSH_WINDOW (pusher.ts). */
  pushesInFlight = 0;
  /** When the last push of entries to it left (clock ms): the next waits LIKES_PUSH_MS (pusher.ts). */
  lastPushAt = -Infinity;
  /** Rides on answers to it not yet known acknowledged, oldest first: last seq, when (clock ms). */
  rides: { upTo: number; at: number }[] = [];
  /** The last push of entries to it (lastPushAt) was a ride, and no bare answer came since. */
  lastPushRode = false;
  /**
   * A ride to it went unacknowledged (refused, as a ride has no answer to say so): nothing
   * rides to it until a push of ours is taken, which meets a refusal's hold if it refuses.
   */
  ridesStopped = false;
  /** When it last pushed to us (clock ms). */
  pushedHereAt = -Infinity;
  /**
   * Since when (clock ms) it has sent us a ride that we applied and did not acknowledge: our
   * next push to it acknowledges it (pusher.ts); undefined when none.
   */
  ackOwedSince: number | undefined;
  syncing = false;
  failures = 0;
  retry: Timer | undefined;
  /** Refusals in a row, by side (it answered, and said no; or this node did). */
  readonly refusals: Record<RefusalSide, number> = { sent: 0, received: 0 };
  /**
   * A refusal's backoff (clock ms): until then nothing is pushed to it and no sync is asked of
   * it (unless it is down: a probe goes through). Then an exchange (heldRetry) tries again.
   */
  heldUntil = 0;
  heldRetry: Timer | undefined;
  /** Until then the peer is pulling pages from us (it asked for more): no need to push them. */
  pullingUntil = 0;
  /** The peer's clock minus ours (ms) at the last answer, when the transport can tell. */
  clockSkewMs: number | undefined;
  /** When a large skew was last logged: once a minute per peer. */
  skewLoggedAt = -Infinity;
  /** The address answers with our own origin: it is this node, and is left out of everything. */
  isSelf = false;

  constructor(readonly address: PeerAddress) {}

  /** Records a successful exchange; returns true when the peer was down before it. */
  contact(sender: Sender, vv: Digest | undefined, now: number, self: OriginId): boolean {
    if (sender.origin === self) {
      this.isSelf = true;
      return false;
    }
    if (this.origin !== undefined && this.origin !== sender.origin) {
      // Same address, new incarnation (its disk was wiped): what it held before is gone.
      this.acked = new Map();
      this.pushedUpTo = 0;
      this.rides = [];
      this.ridesStopped = false;
      this.ackOwedSince = undefined;
    }
    this.node = sender.node;
    this.origin = sender.origin;
    if (vv) this.acked = mergeDigests(this.acked, vv);
    const wasDown = this.answered(now);
    // Back from down (a new link, maybe a restart): refusals start over.
    if (wasDown) this.endRefusals();
    return wasDown;
  }

  /**
   * Records an answer, whatever it said (a refusal too: the peer is reachable); returns true
   * when the peer was down before it.
   */
  answered(now: number): boolean {
    const wasDown = this.up === false;
    this.up = true;
    this.failures = 0;
    this.lastContact = now;
    return wasDown;
  }

  /** Records a failed exchange; returns the delay before the next attempt. */
  failed(self: OriginId, baseMs: number, maxMs: number): number {
    this.up = false;
    this.failures++;
    this.sendAgain(self);
    return backoff(this.failures, baseMs, maxMs);
  }

  /** Records a refusal; returns the backoff before the next attempt. */
  refused(side: RefusalSide, self: OriginId, baseMs: number, maxMs: number): number {
    this.refusals[side]++;
    // What was sent and refused goes again from what it holds.
    this.sendAgain(self);
    return backoff(this.refusals[side], baseMs, maxMs);
  }

  /**
   * Forgets the rides it acknowledged; when the oldest left went unacknowledged for
   * `timeoutMs`, what it carried and all after it goes again, and rides stop (ridesStopped).
   * Returns the milliseconds left until then, Infinity when no ride is on its way.
   */
  rideLeft(self: OriginId, now: number, timeoutMs: number): number {
    const acked = this.ackedOf(self);
    let acknowledged = 0;
    while ((this.rides[acknowledged]?.upTo ?? Infinity) <= acked) acknowledged++;
    if (acknowledged > 0) this.rides.splice(0, acknowledged);
    const oldest = this.rides[0];
    if (!oldest) return Infinity;
    // A clock gone back past the ride counts from now.
    oldest.at = Math.min(oldest.at, now);
    const left = oldest.at + timeoutMs - now;
    if (left > 0) return left;
    // Refused (a ride has no answer to say so) or lost with its link: what it carried goes by
    // our own pushes, which meet a refusal and its hold.
    this.sendAgain(self);
    this.ridesStopped = true;
    return Infinity;
  }

  /** Whether own entries were sent to it (pushed, or riding) that it has not acknowledged. */
  sentUnacknowledged(self: OriginId): boolean {
    return this.pushedUpTo > this.ackedOf(self);
  }

  /** What was sent (pushed, or rode on an answer) and not acknowledged goes again. */
  sendAgain(self: OriginId): void {
    this.pushedUpTo = this.ackedOf(self);
    this.rides = [];
  }

  held(now: number): boolean {
    return this.heldUntil > now;
  }

  endRefusals(): void {
    this.refusals.sent = this.refusals.received = 0;
    this.heldUntil = 0;
    this.heldRetry?.cancel();
    this.heldRetry = undefined;
  }

  ackedOf(origin: OriginId): number {
    return this.acked.get(origin) ?? 0;
  }

  /** Entries this node holds that the peer is not known to hold. */
  pending(have: Digest): number {
    let n = 0;
    for (const [origin, seq] of have) n += Math.max(0, seq - this.ackedOf(origin));
    return n;
  }

  get label(): string {
    return this.node ?? this.address;
  }

  /** What GET /cluster and the peer gauges show of it. */
  view(have: Digest): PeerView {
    return {
      address: this.address,
      node: this.node ?? null,
      origin: this.origin ?? null,
      up: this.up ?? null,
      lastContact: this.lastContact === undefined ? null : new Date(this.lastContact).toISOString(),
      acked: encodeDigest(this.acked),
      pending: this.pending(have),
      clockSkewMs: this.clockSkewMs ?? null,
    };
  }
}
