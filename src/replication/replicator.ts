import {
  digestDiff,
  encodeDigest,
  missingRanges,
  patchDigest,
  type Digest,
  type Entry,
  type Like,
  type OriginId,
} from "../crdt/index.js";
import type { Store } from "../store/index.js";
import { pushSpan, storeSpan } from "../telemetry/spans.js";
import { activeTraceparent } from "../telemetry/trace-context.js";
import { noMetrics, type Logger, type Metrics, type OwnEntry } from "../telemetry/types.js";
import { PeerState } from "./peer-state.js";
import type { ClusterView, Consistency, ReplicationPath, WriteOutcome } from "./types.js";
import type { Clock, Membership, PeerAddress, Random, Timer, Transport } from "./ports.js";
import {
  MAX_PAGE_ENTRIES,
  MAX_PUSH_ENTRIES,
  type DeltasReply,
  type DeltasRequest,
  type PeerReply,
  type PeerRequest,
  type Sender,
  type SyncRequest,
} from "./protocol.js";

export type { ClusterView, Consistency, PeerView, WriteOutcome } from "./types.js";

export interface ReplicatorOptions {
  readonly store: Store;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly random: Random;
  readonly membership: Membership;
  readonly logger: Logger;
  readonly pushMs: number;
  readonly syncMs: number;
  readonly metrics?: Metrics;
  /** Retry backoff of a failing peer: base doubling up to max (ms). */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
}

interface Waiter {
  readonly seq: number;
  readonly required: number;
  readonly resolve: (acks: number) => void;
  readonly timer: Timer;
}

// Own entries waiting to be held by every peer, for the convergence metric. A peer down for
// long must not grow this without bound.
const MAX_TRACKED = 100_000;
// Own entries kept in memory for the push, so that it need not read back what it just wrote.
const OUTBOX_MAX = 4 * MAX_PUSH_ENTRIES;
// Entries a catch-up holds before it applies them in one commit (twenty pages; 10 and 40 measured
// slower or no faster with bench/sections/storage.ts's catch-up at 1M likes).
const CATCH_UP_BATCH = 20 * MAX_PAGE_ENTRIES;
// Pages of missing entries pushed after one sync, before yielding to the next round.
const MAX_PUSH_PAGES_PER_SYNC = 4;

/**
 * The replication core: eager push of own entries to every peer, and version-vector
 * anti-entropy with one random peer per round. Free of I/O: it reaches the network, time and
 * randomness only through its ports.
 */
export class Replicator {
  private readonly peers = new Map<PeerAddress, PeerState>();
  private membershipSeen: readonly PeerAddress[] | undefined;
  private pushTimer: Timer | undefined;
  private syncTimer: Timer | undefined;
  private running = false;
  /** A sync is pulling page after page (a catch-up). */
  private pulling = false;
  private readonly unconverged: OwnEntry[] = [];
  /** The latest own entries, in seq order; older ones are read from the store when needed. */
  private outbox: Entry[] = [];
  private waiters: Waiter[] = [];
  private readonly self: Sender;
  private readonly metrics: Metrics;

  constructor(private readonly o: ReplicatorOptions) {
    this.self = { node: o.store.nodeName, origin: o.store.origin };
    this.metrics = o.metrics ?? noMetrics;
  }

  start(): void {
    this.running = true;
    this.refreshPeers();
    this.scheduleSync(this.o.random() * this.o.syncMs);
    // Whatever was accepted before a restart and not yet acknowledged goes out now.
    this.schedulePush(0);
  }

  stop(): void {
    this.running = false;
    this.pushTimer?.cancel();
    this.syncTimer?.cancel();
    for (const peer of this.peers.values()) peer.retry?.cancel();
    for (const waiter of this.waiters) {
      waiter.timer.cancel();
      waiter.resolve(this.acksFor(waiter.seq));
    }
    this.waiters = [];
  }

  /** Peers other than this node. */
  peerCount(): number {
    return this.livePeers().length;
  }

  /**
   * Accepts a like first-hand: commits it, pushes it, and waits until `consistency` nodes hold
   * it or `timeoutMs` passes. A repeat of a like already held needs no new dot and no wait.
   */
  async write(like: Like, consistency: Consistency, timeoutMs: number): Promise<WriteOutcome> {
    const required = this.required(consistency);
    // The entry carries the request's context, so every node that applies it joins its trace.
    const traceparent = activeTraceparent();
    const { entry } = await storeSpan(() =>
      this.o.store.accept(like, this.o.clock.now(), traceparent),
    );
    if (!entry) return { isNew: false, acks: required, required };
    this.o.logger.debug("like accepted", { post: like.post, user: like.user, seq: entry.seq });
    this.published(entry);
    const acks = required > 1 ? await this.awaitReplicas(entry.seq, required, timeoutMs) : 1;
    return { isNew: true, acks, required };
  }

  /** A like this node accepted first-hand (committed): push it soon. */
  private published(entry: Entry): void {
    // Writers of one commit resume in any order (a sampled one has a span to end first): keep
    // the outbox in seq order, or every push would fall back to reading the store.
    let at = this.outbox.length;
    while (at > 0 && (this.outbox[at - 1] as Entry).seq > entry.seq) at--;
    this.outbox.splice(at, 0, entry);
    if (this.outbox.length > 2 * OUTBOX_MAX) this.outbox = this.outbox.slice(-OUTBOX_MAX);
    if (this.unconverged.length >= MAX_TRACKED) this.unconverged.shift();
    this.unconverged.push(
      entry.traceparent
        ? { seq: entry.seq, ts: entry.ts, traceparent: entry.traceparent }
        : { seq: entry.seq, ts: entry.ts },
    );
    const backlog = entry.seq - Math.min(...this.livePeers().map((p) => p.pushedUpTo), entry.seq);
    this.schedulePush(backlog >= MAX_PUSH_ENTRIES ? 0 : this.o.pushMs);
  }

  /** Nodes (this one included) that hold own entry `seq`. */
  acksFor(seq: number): number {
    return 1 + this.livePeers().filter((p) => p.ackedOf(this.self.origin) >= seq).length;
  }

  /** Nodes needed for a consistency level, this one included. */
  required(level: Consistency): number {
    const n = 1 + this.peerCount();
    return level === "local" ? 1 : level === "all" ? n : Math.floor(n / 2) + 1;
  }

  /** Resolves with the number of nodes holding `seq` once `required` do, or at the timeout. */
  private awaitReplicas(seq: number, required: number, timeoutMs: number): Promise<number> {
    const acks = this.acksFor(seq);
    if (acks >= required || !this.running) return Promise.resolve(acks);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        seq,
        required,
        resolve,
        timer: this.o.clock.setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          resolve(this.acksFor(seq));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
      this.schedulePush(0);
    });
  }

  /** Answers a peer's request: the protocol as a function of the message and the store. */
  async handle(request: PeerRequest): Promise<PeerReply> {
    return request.kind === "deltas" ? this.onDeltas(request) : this.onSync(request);
  }

  view(): ClusterView {
    const have = this.o.store.digest();
    return {
      node: this.self.node,
      origin: this.self.origin,
      vv: encodeDigest(have),
      peers: [...this.peers.values()].filter((p) => !p.isSelf).map((p) => p.view(have)),
    };
  }

  private async onDeltas(request: DeltasRequest): Promise<PeerReply> {
    const { stored } = await this.o.store.apply(request.entries);
    this.reportApplied(stored, "push", request);
    // An origin holds every one of its own seqs up to the highest it sends.
    const own = request.entries.reduce(
      (max, e) => (e.origin === request.origin ? Math.max(max, e.seq) : max),
      0,
    );
    this.noteRequest(request, own > 0 ? new Map([[request.origin, own]]) : undefined);
    // The pusher needs our seqs of the origins it pushed, not our whole vector.
    const have = this.o.store.digest();
    const vv = new Map<OriginId, number>();
    for (const { origin } of request.entries)
      if (!vv.has(origin)) vv.set(origin, have.get(origin) ?? 0);
    return { kind: "deltas-reply", ...this.self, vv };
  }

  private onSync(request: SyncRequest): PeerReply {
    const have = this.o.store.digest();
    const entries: Entry[] = [];
    let more = false;
    for (const range of missingRanges(have, request.vv)) {
      const room = MAX_PAGE_ENTRIES - entries.length;
      if (room <= 0) {
        more = true;
        break;
      }
      const page = this.o.store.entries(range, room);
      entries.push(...page);
      if (page.length === room && range.after + room < range.upTo) more = true;
    }
    const peer = this.noteRequest(request, request.vv);
    if (peer && more) peer.pullingUntil = this.o.clock.now() + this.o.syncMs;
    return { kind: "sync-reply", ...this.self, entries, diff: digestDiff(have, request.vv), more };
  }

  /** A request tells who the caller is and, for a sync, what it holds. */
  private noteRequest(sender: Sender, vv: Digest | undefined): PeerState | undefined {
    const peer = [...this.peers.values()].find((p) => p.origin === sender.origin);
    if (peer) this.contacted(peer, sender, vv);
    return peer;
  }

  private livePeers(): PeerState[] {
    return [...this.peers.values()].filter((p) => !p.isSelf);
  }

  private refreshPeers(): void {
    const current = this.o.membership.peers();
    if (current === this.membershipSeen) return;
    this.membershipSeen = current;
    const wanted = new Set(current);
    for (const [address, peer] of this.peers)
      if (!wanted.has(address)) {
        peer.retry?.cancel();
        this.peers.delete(address);
      }
    for (const address of wanted)
      if (!this.peers.has(address)) {
        const peer = new PeerState(address);
        this.peers.set(address, peer);
        if (this.running) void this.greet(peer);
      }
    this.settle();
  }

  /**
   * An empty push to a new peer: both ends learn at once that the other is up and who it is,
   * rather than at the first write or random sync partner (GET /cluster said `up: null` until
   * then). It pulls nothing, so a joining node's catch-up still comes from one peer at a time.
   */
  private async greet(peer: PeerState): Promise<void> {
    try {
      const reply = await this.o.transport.send(peer.address, {
        kind: "deltas",
        ...this.self,
        entries: [],
      });
      this.contacted(peer, reply, reply.vv);
    } catch (error) {
      this.failedPeer(peer, "greeting", error);
    }
  }

  private schedulePush(ms: number): void {
    if (!this.running) return;
    if (this.pushTimer && ms > 0) return;
    this.pushTimer?.cancel();
    this.pushTimer = this.o.clock.setTimeout(() => {
      this.pushTimer = undefined;
      this.flushPush();
    }, ms);
  }

  private flushPush(): void {
    this.refreshPeers();
    const own = this.o.store.digest().get(this.self.origin) ?? 0;
    for (const peer of this.livePeers()) {
      // A down peer is probed by its retry timer, not flooded with pushes.
      if (peer.pushing || peer.up === false) continue;
      const after = Math.max(peer.pushedUpTo, peer.ackedOf(this.self.origin));
      if (after < own) void this.pushTo(peer, after, own);
    }
  }

  private async pushTo(peer: PeerState, after: number, upTo: number): Promise<void> {
    const entries =
      this.fromOutbox(after, upTo) ??
      this.o.store.entries({ origin: this.self.origin, after, upTo }, MAX_PUSH_ENTRIES);
    const last = entries.at(-1);
    if (!last) return;
    peer.pushing = true;
    peer.pushedUpTo = last.seq;
    try {
      const reply = await this.sendDeltas(peer, entries);
      this.contacted(peer, reply, reply.vv);
    } catch (error) {
      this.failedPeer(peer, "push", error);
    } finally {
      peer.pushing = false;
    }
    // What arrived while this push was in flight goes out now: one push in flight per peer
    // batches naturally under load.
    if (peer.up && peer.pushedUpTo < (this.o.store.digest().get(this.self.origin) ?? 0))
      this.schedulePush(0);
  }

  /** Own entries (after, upTo] from memory, or undefined if the outbox does not hold them all. */
  private fromOutbox(after: number, upTo: number): Entry[] | undefined {
    const first = this.outbox[0]?.seq;
    if (first === undefined || first > after + 1) return undefined;
    const start = after + 1 - first;
    const end = Math.min(upTo - first + 1, start + MAX_PUSH_ENTRIES);
    const entries = this.outbox.slice(start, end);
    // Contiguous seqs, as accepted; anything else is read from the store.
    const contiguous =
      entries.length === end - start && entries.every((e, i) => e.seq === after + 1 + i);
    this.dropPushed();
    return contiguous && entries.length > 0 ? entries : undefined;
  }

  /** Forgets outbox entries that every peer has been sent. */
  private dropPushed(): void {
    const sent = Math.min(...this.livePeers().map((p) => p.pushedUpTo));
    const keep = this.outbox.findIndex((e) => e.seq > sent);
    if (keep > 0) this.outbox = this.outbox.slice(keep);
    else if (keep === -1 && this.outbox.length > 0) this.outbox = [];
  }

  private scheduleSync(ms: number): void {
    if (!this.running) return;
    this.syncTimer = this.o.clock.setTimeout(() => {
      this.refreshPeers();
      const candidates = this.livePeers();
      const peer = candidates[Math.floor(this.o.random() * candidates.length)];
      // While a catch-up pulls page after page from one peer, pulling the same pages from
      // another would only double the work.
      if (peer && !this.pulling) void this.syncWith(peer);
      // Jitter keeps nodes from syncing in lockstep.
      this.scheduleSync(this.o.syncMs * (0.75 + this.o.random() / 2));
    }, ms);
  }

  /**
   * One anti-entropy exchange: pull what we lack (all pages), then push what it lacks. In a
   * catch-up the next page is asked for before the pages held are applied, and they are applied
   * up to CATCH_UP_BATCH entries at a time: a commit costs about one write per page of the
   * tree it touches, so one commit of twenty pages is far cheaper than twenty.
   */
  private async syncWith(peer: PeerState): Promise<void> {
    if (peer.syncing || !this.running) return;
    peer.syncing = true;
    const asked = new Map(this.o.store.digest());
    const ask = () => {
      const vv = new Map(asked);
      const reply = this.o.transport.send(peer.address, { kind: "sync", ...this.self, vv });
      reply.catch(() => undefined); // awaited below; not left unhandled if we stop before
      return { vv, reply };
    };
    let held: Entry[] = [];
    let from: Sender | undefined; // the sender of the entries held
    const applyHeld = async () => {
      const entries = held;
      held = [];
      if (entries.length === 0 || !from) return;
      const { stored } = await this.o.store.apply(entries);
      this.reportApplied(stored, "sync", from);
    };
    try {
      let next = ask();
      for (;;) {
        const sent = next.vv;
        const reply = await next.reply;
        from = reply;
        this.pulling = reply.more;
        // The reply holds only where the peer's vector differs from the one we sent.
        this.contacted(peer, reply, patchDigest(sent, reply.diff));
        if (peer.isSelf) return;
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
      this.failedPeer(peer, "sync", error);
    } finally {
      // What arrived is valid whatever happened after: keep it.
      await applyHeld().catch((error: unknown) => this.failedPeer(peer, "sync", error));
      peer.syncing = false;
      this.pulling = false;
    }
  }

  private async pushMissing(peer: PeerState): Promise<void> {
    // A peer that is pulling pages from us gets them that way; pushing them too doubles the work.
    if (peer.pullingUntil > this.o.clock.now()) return;
    for (let page = 0; page < MAX_PUSH_PAGES_PER_SYNC; page++) {
      const entries: Entry[] = [];
      for (const range of missingRanges(this.o.store.digest(), peer.acked)) {
        if (entries.length >= MAX_PAGE_ENTRIES) break;
        entries.push(...this.o.store.entries(range, MAX_PAGE_ENTRIES - entries.length));
      }
      if (entries.length === 0) return;
      const reply = await this.sendDeltas(peer, entries);
      this.contacted(peer, reply, reply.vv);
    }
  }

  private sendDeltas(peer: PeerState, entries: readonly Entry[]): Promise<DeltasReply> {
    return pushSpan(peer.label, entries, () =>
      this.o.transport.send(peer.address, { kind: "deltas", ...this.self, entries }),
    );
  }

  private reportApplied(stored: readonly Entry[], path: ReplicationPath, from: Sender): void {
    if (stored.length === 0) return;
    this.metrics.entriesApplied(stored, path, this.o.clock.now());
    this.o.logger.debug("entries applied", { from: from.node, path, count: stored.length });
  }

  private contacted(peer: PeerState, sender: Sender, vv: Digest | undefined): void {
    const wasDown = peer.contact(sender, vv, this.o.clock.now(), this.self.origin);
    peer.retry?.cancel();
    peer.retry = undefined;
    if (wasDown) {
      this.o.logger.info("peer up", { peer: peer.label, address: peer.address });
      // Back from a failure or a partition: exchange everything now rather than at random.
      void this.syncWith(peer);
    }
    this.settle();
  }

  private failedPeer(peer: PeerState, what: string, error: unknown): void {
    const wasUp = peer.up !== false;
    const delay = peer.failed(
      this.self.origin,
      this.o.retryBaseMs ?? 50,
      this.o.retryMaxMs ?? 1000,
    );
    if (wasUp) {
      this.o.logger.warn("peer down", {
        peer: peer.label,
        address: peer.address,
        during: what,
        error: String(error),
      });
    }
    if (!this.running || peer.retry || !this.peers.has(peer.address)) return;
    peer.retry = this.o.clock.setTimeout(() => {
      peer.retry = undefined;
      void this.syncWith(peer);
    }, delay);
  }

  /** Reports entries now held everywhere and answers the writers waiting for replicas. */
  private settle(): void {
    const peers = this.livePeers();
    const own = this.self.origin;
    const everywhere = Math.min(...peers.map((p) => p.ackedOf(own)));
    const now = this.o.clock.now();
    while (this.unconverged.length > 0 && (this.unconverged[0]?.seq ?? Infinity) <= everywhere) {
      const entry = this.unconverged.shift() as OwnEntry;
      this.metrics.entryConverged(entry, Math.max(0, now - entry.ts) / 1000);
    }
    if (this.waiters.length === 0) return;
    this.waiters = this.waiters.filter((waiter) => {
      const acks = this.acksFor(waiter.seq);
      if (acks < waiter.required) return true;
      waiter.timer.cancel();
      waiter.resolve(acks);
      return false;
    });
  }
}
