// What a peer may make this node hold, whatever it sends: a peer that holds the cluster secret
// but is buggy or hostile must not grow this node's memory, metrics or traffic without bound,
// nor store entries that can never replicate. A message past a limit is refused whole.
import { DEFAULT_MAX_ORIGINS } from "../config.js";
import type { Digest, Entry, OriginId } from "../crdt/index.js";

export interface PeerLimits {
  /** Origins (node incarnations) this node holds at most: LIKES_MAX_ORIGINS. */
  readonly maxOrigins: number;
  /**
   * How far above the contiguous prefix of its origin an entry may be. Entries above a gap wait
   * (stored, counted) until it fills, and are not replicated until then: a bound keeps what can
   * wait small. A node never pushes more than a page ahead of what a peer acknowledged.
   */
  readonly maxGap: number;
  /** How far ahead of this node's clock an entry's ts may be (ms): skew, not a forged future. */
  readonly maxFutureMs: number;
}

export const DEFAULT_PEER_LIMITS: PeerLimits = {
  maxOrigins: DEFAULT_MAX_ORIGINS,
  maxGap: 100_000,
  maxFutureMs: 60 * 60 * 1000,
};

/** A peer's message went past a limit: refused whole, nothing of it applied. */
export class PeerLimitError extends Error {
  override readonly name = "PeerLimitError";
}

/** Throws PeerLimitError when `entries` would take this node past a limit. */
export function checkEntries(
  entries: readonly Entry[],
  have: Digest,
  now: number,
  limits: PeerLimits,
): void {
  let newOrigins: Set<OriginId> | undefined;
  // Entries come in runs of one origin (a page, a push): what is held is looked up once a run.
  let origin: OriginId | undefined;
  let held: number | undefined;
  for (const e of entries) {
    // A ts far ahead would show as lag that never ends, on every node, for good.
    if (e.ts > now + limits.maxFutureMs)
      throw new PeerLimitError(
        `entry ${e.origin}#${e.seq} has ts ${e.ts}, more than ${limits.maxFutureMs} ms ahead of this node's clock`,
      );
    if (e.origin !== origin) {
      origin = e.origin;
      held = have.get(origin);
      if (held === undefined) (newOrigins ??= new Set()).add(origin);
    }
    if (e.seq > (held ?? 0) + limits.maxGap)
      throw new PeerLimitError(
        `entry ${e.origin}#${e.seq} is more than ${limits.maxGap} above the ${held ?? 0} held`,
      );
  }
  if (newOrigins && have.size + newOrigins.size > limits.maxOrigins)
    throw new PeerLimitError(
      `${newOrigins.size} new origins would take this node past ${limits.maxOrigins} origins (LIKES_MAX_ORIGINS)`,
    );
}

/**
 * What a peer's claimed vector can be believed of: only origins this node holds (the others
 * change nothing here, and would only grow its memory), and for this node's own origin never
 * more than it made.
 */
export function believable(claim: Digest, have: Digest, own: OriginId): Map<OriginId, number> {
  const believed = new Map<OriginId, number>();
  for (const [origin, seq] of claim) {
    const held = have.get(origin);
    if (held === undefined) continue;
    believed.set(origin, origin === own ? Math.min(seq, held) : seq);
  }
  return believed;
}

/**
 * Logs refused peer messages at most once a minute per peer and reason, with how many were
 * refused since: a peer that retries every few ms must not flood the log.
 */
export class RefusalLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly now: () => number,
    private readonly log: (message: string, fields: Record<string, unknown>) => void,
    private readonly everyMs = 60_000,
    private readonly message = "peer message refused",
  ) {}

  refused(peer: string, error: Error, reason = error.name): void {
    const key = `${peer}\u0000${reason}`;
    const seen = this.last.get(key);
    const now = this.now();
    if (seen && now - seen.at < this.everyMs) {
      seen.suppressed++;
      return;
    }
    // Keys are peers times reasons: few, but a forged sender name must not grow this forever.
    if (this.last.size >= 1024) this.last.clear();
    this.last.set(key, { at: now, suppressed: 0 });
    this.log(this.message, {
      peer,
      reason: error.message,
      refusedSinceLastLine: seen?.suppressed ?? 0,
    });
  }
}
