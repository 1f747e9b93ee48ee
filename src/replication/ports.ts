// The ports of the replication core: it reaches time, randomness, peers and the network only
// through these, so the simulation can drive it in virtual time over a simulated network.
import type { PeerAddress } from "../config.js";
import type { PeerRequest, ReplyTo } from "./protocol.js";

export type { PeerAddress } from "../config.js";

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Wall-clock milliseconds since the epoch (virtual in the simulation). */
  now(): number;
  setTimeout(callback: () => void, ms: number): Timer;
}

/** A uniform random number in [0, 1). */
export type Random = () => number;

export interface Transport {
  /**
   * Sends a request to a peer; rejects when the peer cannot be reached or answers badly, or
   * with an error carrying the peer's `code` when it answered with an error (refusalCode).
   */
  send<R extends PeerRequest>(peer: PeerAddress, request: R): Promise<ReplyTo<R>>;
  /** The peer left the membership: what is held for it (a link, its name) goes. */
  forget?(peer: PeerAddress): void;
}

/**
 * The peer's error code when a send's rejection says it answered, and refused (`peer_limit`,
 * `storage_full`, `internal`, ...): a code in lower case, unlike a socket's (`ECONNRESET`).
 */
export function refusalCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return error instanceof Error && typeof code === "string" && /^[a-z_]+$/.test(code)
    ? code
    : undefined;
}

/** Who the peers are right now; membership may change at any time. */
export interface Membership {
  peers(): readonly PeerAddress[];
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => {
    // "Now" runs once the work in hand is done (every promise of this turn settled), before
    // any I/O: a timer of 0 would wait for the next timer tick (≥ 1 ms, more on a busy loop).
    if (ms <= 0) {
      let cancelled = false;
      process.nextTick(() => cancelled || callback());
      return { cancel: () => (cancelled = true) };
    }
    const handle = setTimeout(callback, ms);
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};

export class StaticMembership implements Membership {
  constructor(private readonly addresses: readonly PeerAddress[]) {}
  peers(): readonly PeerAddress[] {
    return this.addresses;
  }
}
