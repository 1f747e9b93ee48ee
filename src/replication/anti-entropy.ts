// Anti-entropy: every LIKES_SYNC_MS (jittered) one random peer is sent this node's version
// vector; its answer carries pages of what this node lacks, which are pulled to the end (a
// catch-up), and then what the peer lacks is pushed to it.
import { patchDigest, type Digest, type Entry, type OriginId } from "../crdt/index.js";
import type { Store } from "../store/index.js";
import { syncSpan } from "../telemetry/spans.js";
import type { Logger, Metrics, ReplicationPath } from "../telemetry/types.js";
import { PeerLimitError, checkEntries, type PeerLimits, type RefusalLog } from "./limits.js";
import type { PeerState } from "./peer-state.js";
import type { PeerTable } from "./peer-table.js";
import type { Clock, Random, Timer, Transport } from "./ports.js";
import { MAX_PAGE_ENTRIES, missingEntries, type Sender } from "./protocol.js";
import { WindowsUnsupportedError, pullWindows, type CatchUpDeps } from "./catch-up.js";
import type { Pusher } from "./pusher.js";

// Pages of missing entries pushed after one sync, before yielding to the next round.
const MAX_PUSH_PAGES_PER_SYNC = 4;

export interface AntiEntropyDeps {
  readonly self: Sender;
  readonly store: Store;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  readonly metrics: Pick<Metrics, "entriesApplied" | "peerMessage">;
  readonly peers: PeerTable;
  readonly pusher: Pusher;
  readonly syncMs: number;
  readonly limits: PeerLimits;
  readonly refusals: RefusalLog;
}

/**
 * Stores entries that came from a peer and reports the ones that were new here. A push's own
 * entries (the sender's origin) are taken only without a gap: the sender sends them again.
 */
export async function applyFromPeer(
  deps: Pick<AntiEntropyDeps, "store" | "clock" | "logger" | "metrics">,
  entries: readonly Entry[],
  path: ReplicationPath,
  from: Sender,
): Promise<void> {
  const { stored } = await deps.store.apply(entries, path === "push" ? from.origin : undefined);
  if (stored.length === 0) return;
  deps.metrics.entriesApplied(stored, path, deps.clock.now());
  deps.logger.debug("entries applied", { from: from.node, path, count: stored.length });
}

export class AntiEntropy {
  private timer: Timer | undefined;
  private running = false;
  /** The peer a catch-up pulls page after page from, if one does. */
  private source: PeerState | undefined;
  /**
   * Peers that refused a windowed page (an older build), by the incarnation that refused: they
   * are paged one page at a time until they restart (maybe upgraded, as a new incarnation).
   */
  private readonly windowless = new WeakMap<PeerState, OriginId | undefined>();
  private readonly catchUp: CatchUpDeps;

  constructor(private readonly deps: AntiEntropyDeps) {
    this.catchUp = {
      ...deps,
      apply: async (entries, from) => {
        await applyFromPeer(deps, entries, "sync", from);
        const peer = deps.peers.byOrigin(from.origin);
        if (peer && entries.length > 0) deps.peers.accepted(peer, "received");
      },
    };
  }

  start(): void {
    this.running = true;
    this.schedule(this.deps.random() * this.deps.syncMs);
  }

  stop(): void {
    this.running = false;
    this.timer?.cancel();
    this.timer = undefined;
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    const { clock, peers, random, syncMs } = this.deps;
    this.timer = clock.setTimeout(() => {
      peers.refresh();
      // A peer known to be down is probed by its retry timer; the round goes to one that answers.
      const live = peers.live();
      const up = live.filter((p) => p.up !== false);
      const candidates = up.length > 0 ? up : live;
      const peer = candidates[Math.floor(random() * candidates.length)];
      // While a catch-up pulls page after page from one peer, pulling the same pages from
      // another would only double the work.
      if (peer && !this.source) void this.syncWith(peer);
      // Jitter keeps nodes from syncing in lockstep.
      this.schedule(syncMs * (0.75 + random() / 2));
    }, ms);
  }

  /**
   * One exchange: pull what we lack, then push what the peer lacks. The first page comes from
   * a plain sync, which also tells the peer's vector; when more follow (a catch-up), the rest
   * is pulled in windows with pages in flight while others commit (catch-up.ts), then a plain
   * sync again picks up what the peer took meanwhile. A catch-up runs from one peer at a time:
   * a sync with another that finds more to pull takes its first page only.
   */
  async syncWith(peer: PeerState): Promise<void> {
    // A peer held after a refusal is synced with when its hold ends (peer-table.ts); a probe of
    // one that went down meanwhile goes through.
    const held = peer.up !== false && peer.held(this.deps.clock.now());
    if (peer.syncing || !this.running || held) return;
    const { self, store, transport, peers } = this.deps;
    peer.syncing = true;
    let failed = false;
    let pulling = false;
    try {
      for (;;) {
        // What we have received is what we claim: a plain page is committed before the next.
        const vv = store.digest();
        const page = await syncSpan(
          peer.label,
          async () => {
            const reply = await transport.send(peer.address, { kind: "sync", ...self, vv });
            // The reply holds only where the peer's vector differs from the one we sent.
            const theirs = patchDigest(vv, reply.diff);
            peers.contacted(peer, reply, theirs);
            if (peer.isSelf) return undefined;
            checkEntries(reply.entries, vv, this.deps.clock.now(), this.deps.limits);
            await applyFromPeer(this.deps, reply.entries, "sync", reply);
            // A page taken whole, even empty: what this node refused of the peer is not owed.
            peers.accepted(peer, "received");
            return { reply, theirs };
          },
          (p) => ({
            "likes.entries": p?.reply.entries.length ?? 0,
            "likes.more": p?.reply.more ?? false,
          }),
        );
        if (page === undefined) return;
        const { reply, theirs } = page;
        if (!reply.more || !this.running) break;
        if (this.source !== undefined && this.source !== peer) break;
        this.source = peer;
        pulling = true;
        if (this.windowless.has(peer) && this.windowless.get(peer) === peer.origin) continue;
        try {
          await pullWindows(
            this.catchUp,
            peer,
            theirs,
            new Map(store.digest()),
            () => this.running,
          );
        } catch (error) {
          if (!(error instanceof WindowsUnsupportedError)) throw error;
          this.windowless.set(peer, peer.origin);
          this.deps.logger.info("peer pages one page at a time", { peer: peer.label });
        }
        if (!this.running) break;
      }
      await this.pushMissing(peer);
    } catch (error) {
      if (error instanceof PeerLimitError) {
        this.deps.metrics.peerMessage("sync-reply", "rejected");
        this.deps.refusals.refused(peer.label, error);
      }
      peers.failed(peer, "sync", error);
      failed = true;
    } finally {
      peer.syncing = false;
      if (this.source === peer) this.source = undefined;
      // A catch-up whose source failed goes on from another peer now, not at a random round.
      if (failed && pulling && this.running) {
        const next = peers.live().find((p) => p !== peer && p.up !== false && !p.syncing);
        if (next) void this.syncWith(next);
      }
    }
  }

  /**
   * What the peer holds, as far as a push of what it lacks should go: of this node's own
   * entries, also those pushed to it or riding to it and not yet acknowledged (the pusher sends
   * them again if they are lost).
   */
  private notSent(peer: PeerState): Digest {
    const { origin } = this.deps.self;
    return peer.sentUnacknowledged(origin)
      ? new Map(peer.acked).set(origin, peer.pushedUpTo)
      : peer.acked;
  }

  private async pushMissing(peer: PeerState): Promise<void> {
    // A peer that is pulling pages from us gets them that way; pushing them too doubles the work.
    if (peer.pullingUntil > this.deps.clock.now() || this.deps.pusher.held(peer)) return;
    for (let page = 0; page < MAX_PUSH_PAGES_PER_SYNC; page++) {
      const entries = missingEntries(this.deps.store, this.notSent(peer), MAX_PAGE_ENTRIES);
      if (entries.length === 0) break;
      await this.deps.pusher.send(peer, entries);
    }
    // What the peer lacked went, or nothing was owed: a refusal of what this node sent is over.
    // (An eager push of this node's own likes ends none: the refused page may hold others'.)
    // Own likes on their way (left out above) are not known taken: they may meet the refusal.
    if (!peer.sentUnacknowledged(this.deps.self.origin)) this.deps.peers.accepted(peer, "sent");
  }
}
