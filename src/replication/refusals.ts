// A peer that answers "no" (its limits, its disk), or whose answer this node refuses (its own
// limits, its own disk): it answered, so it is not marked down, and asking again at once would
// be refused again. It is held for a backoff instead (peer-state.ts keeps the counts and the
// hold; the peer table calls this for the failures that are refusals).
import type { OriginId } from "../crdt/index.js";
import { StorageFullError, StoreCorruptError } from "../store/index.js";
import type { Logger } from "../telemetry/types.js";
import { PeerLimitError } from "./limits.js";
import type { PeerState, RefusalSide } from "./peer-state.js";
import { refusalCode, type Clock, type Timer } from "./ports.js";

/** A refusal's backoff: slower than a link's, and not reset by the peer's other answers. */
export const REFUSAL_BASE_MS = 1_000;
export const REFUSAL_MAX_MS = 60_000;

export interface RefusalDeps {
  readonly self: OriginId;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The peer table's jitter (half to all of a delay). */
  readonly jittered: (ms: number) => number;
  /** The peer table's retry: an exchange with the peer in `ms` (`done` first). */
  readonly retryIn: (peer: PeerState, ms: number, done: () => void) => Timer;
  readonly changed: () => void;
}

export class Refusals {
  constructor(private readonly deps: RefusalDeps) {}

  /**
   * Until a backoff runs out, no sync is asked of the peer, nor (if it refused what this node
   * sent) anything pushed to it; then an exchange tries again. The backoff grows with the
   * refusals of one side in a row: the peer's of what this node sent (`sent`), or this node's
   * of what the peer sent (`received`). Refusals that come while the peer is held (the rest of a
   * window of pushes) count for nothing on their side; the other side's first starts it, under
   * the hold that runs. Logged when a side starts refusing and when it ends, not at each refusal.
   */
  refused(peer: PeerState, side: RefusalSide, what: string, error: unknown): void {
    const now = this.deps.clock.now();
    const held = peer.held(now);
    if (held && peer.refusals[side] > 0) return;
    const delay = this.deps.jittered(
      peer.refused(side, this.deps.self, REFUSAL_BASE_MS, REFUSAL_MAX_MS),
    );
    if (peer.refusals[side] === 1)
      this.deps.logger.warn(side === "sent" ? "peer refuses" : "refusing a peer's entries", {
        peer: peer.label,
        address: peer.address,
        during: what,
        error: String(error),
        note: "no push or sync until a backoff (0.5-1 s, doubling to 30-60 s) runs out",
      });
    this.deps.changed();
    if (held) return;
    peer.heldUntil = now + delay;
    peer.heldRetry?.cancel();
    peer.heldRetry = this.deps.retryIn(peer, delay, () => {
      peer.heldRetry = undefined;
      // A timer may fire a millisecond before the clock reaches its time: the hold is over.
      peer.heldUntil = 0;
    });
  }

  /**
   * What was refused passed: all the peer lacked went to it (`sent`: anti-entropy's pushes of
   * what it lacks, or nothing was owed), or a sync page from it was taken whole (`received`). A
   * refusal on that side is over, and the hold with it once neither side refuses.
   */
  accepted(peer: PeerState, side: RefusalSide): void {
    if (peer.refusals[side] === 0) return;
    peer.refusals[side] = 0;
    this.deps.logger.info(
      side === "sent" ? "peer accepts again" : "taking a peer's entries again",
      {
        peer: peer.label,
        address: peer.address,
      },
    );
    if (peer.refusals.sent === 0 && peer.refusals.received === 0) peer.endRefusals();
  }
}

/**
 * Whose refusal an exchange's failure is: the peer's (it answered with an error code: its limits,
 * its disk), or this node's (a limit on what it takes, its own disk full or damaged, while it
 * applied what the peer sent); undefined for a link that failed.
 */
export function refusalSide(error: unknown): RefusalSide | undefined {
  if (refusalCode(error) !== undefined) return "sent";
  if (
    error instanceof PeerLimitError ||
    error instanceof StorageFullError ||
    error instanceof StoreCorruptError
  )
    return "received";
  return undefined;
}
