// Anti-entropy: every LIKES_SYNC_MS (jittered) one random peer is sent this node's version
// vector; its answer carries pages of what this node lacks, which are pulled to the end (a
// catch-up), and then what the peer lacks is pushed to it.
import { patchDigest, type Entry } from "../crdt/index.js";
import type { Store } from "../store/index.js";
import type { Logger, Metrics, ReplicationPath } from "../telemetry/types.js";
import { PeerLimitError, checkEntries, type PeerLimits, type RefusalLog } from "./limits.js";
import type { PeerState } from "./peer-state.js";
import type { PeerTable } from "./peer-table.js";
import type { Clock, Random, Timer, Transport } from "./ports.js";
import { MAX_PAGE_ENTRIES, missingEntries, type Sender } from "./protocol.js";
import type { Pusher } from "./pusher.js";

// Entries a catch-up holds before it applies them in one commit (twenty pages; 10 and 40 measured
// slower or no faster with bench/sections/storage.ts's catch-up at 1M likes).
const CATCH_UP_BATCH = 20 * MAX_PAGE_ENTRIES;
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

/** Stores entries that came from a peer and reports the ones that were new here. */
export async function applyFromPeer(
  deps: Pick<AntiEntropyDeps, "store" | "clock" | "logger" | "metrics">,
  entries: readonly Entry[],
  path: ReplicationPath,
  from: Sender,
): Promise<void> {
  const { stored } = await deps.store.apply(entries);
  if (stored.length === 0) return;
  deps.metrics.entriesApplied(stored, path, deps.clock.now());
  deps.logger.debug("entries applied", { from: from.node, path, count: stored.length });
}

export class AntiEntropy {
  private timer: Timer | undefined;
  private running = false;
  /** A sync is pulling page after page (a catch-up). */
  private pulling = false;

  constructor(private readonly deps: AntiEntropyDeps) {}

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
      if (peer && !this.pulling) void this.syncWith(peer);
      // Jitter keeps nodes from syncing in lockstep.
      this.schedule(syncMs * (0.75 + random() / 2));
    }, ms);
  }

  /**
   * One exchange: pull what we lack (all pages), then push what the peer lacks. In a catch-up
   * the next page is asked for before the pages held are applied, and they are applied up to
   * CATCH_UP_BATCH entries at a time: a commit costs about one write per page of the tree it
   * touches, so one commit of twenty pages is far cheaper than twenty.
   */
  async syncWith(peer: PeerState): Promise<void> {
    if (peer.syncing || !this.running) return;
    const { self, store, transport, peers } = this.deps;
    peer.syncing = true;
    const asked = new Map(store.digest());
    const ask = () => {
      const vv = new Map(asked);
      const reply = transport.send(peer.address, { kind: "sync", ...self, vv });
      reply.catch(() => undefined); // awaited below; not left unhandled if we stop before
      return { vv, reply };
    };
    let held: Entry[] = [];
    let from: Sender | undefined; // the sender of the entries held
    let failed = false;
    const applyHeld = async () => {
      const entries = held;
      held = [];
      if (entries.length > 0 && from) await applyFromPeer(this.deps, entries, "sync", from);
    };
    try {
      let next = ask();
      for (;;) {
        const sent = next.vv;
        const reply = await next.reply;
        from = reply;
        this.pulling = reply.more;
        // The reply holds only where the peer's vector differs from the one we sent.
        peers.contacted(peer, reply, patchDigest(sent, reply.diff));
        if (peer.isSelf) return;
        checkEntries(reply.entries, asked, this.deps.clock.now(), this.deps.limits);
        for (const e of reply.entries) {
          held.push(e);
          if (e.seq === (asked.get(e.origin) ?? 0) + 1) asked.set(e.origin, e.seq);
        }
        const more = reply.more && this.running;
        if (more) next = ask();
        if (more && held.length < CATCH_UP_BATCH) continue;
        await applyHeld();
        await this.pushMissing(peer);
        if (!more) break;
      }
    } catch (error) {
      if (error instanceof PeerLimitError) {
        this.deps.metrics.peerMessage("sync-reply", "rejected");
        this.deps.refusals.refused(peer.label, error);
      }
      peers.failed(peer, "sync", error);
      failed = true;
    } finally {
      // What arrived is valid whatever happened after: keep it.
      await applyHeld().catch((error: unknown) => peers.failed(peer, "sync", error));
      peer.syncing = false;
      const wasPulling = this.pulling;
      this.pulling = false;
      // A catch-up whose source failed goes on from another peer now, not at a random round.
      if (failed && wasPulling) {
        const next = peers.live().find((p) => p !== peer && p.up !== false && !p.syncing);
        if (next) void this.syncWith(next);
      }
    }
  }

  private async pushMissing(peer: PeerState): Promise<void> {
    // A peer that is pulling pages from us gets them that way; pushing them too doubles the work.
    if (peer.pullingUntil > this.deps.clock.now() || this.deps.pusher.paused(peer)) return;
    for (let page = 0; page < MAX_PUSH_PAGES_PER_SYNC; page++) {
      const entries = missingEntries(this.deps.store, peer.acked, MAX_PAGE_ENTRIES);
      if (entries.length === 0) return;
      await this.deps.pusher.send(peer, entries);
    }
  }
}
