// A catch-up: a node far behind one peer pulls what it lacks page by page, with several pages in
// flight while the pages already here are committed, so that the peer reads and sends the next
// pages while this node writes.
import {
  missingRanges,
  patchDigest,
  type Digest,
  type Entry,
  type OriginId,
  type SeqRange,
} from "../crdt/index.js";
import type { Store } from "../store/index.js";
import { checkEntries, type PeerLimits } from "./limits.js";
import type { PeerState } from "./peer-state.js";
import type { PeerTable } from "./peer-table.js";
import type { Clock, Transport } from "./ports.js";
import { MAX_PAGE_ENTRIES, type Sender, type SyncReply } from "./protocol.js";

/**
 * Entries held before they are applied in one commit (twenty pages): a commit costs about one
 * write per page of the tree it touches, so one commit of twenty pages is far cheaper than
 * twenty (10 and 40 measured slower or no faster with bench/sections/storage.ts at 1M likes).
 */
export const CATCH_UP_BATCH = 20 * MAX_PAGE_ENTRIES;
/**
 * Page requests a catch-up keeps in flight: a commit's worth, so the peer reads and sends the
 * next batch while this node commits one. What the catch-up holds is bounded by this: at most
 * CATCH_UP_BATCH entries held or committing, plus PAGES_IN_FLIGHT pages (each at most
 * MAX_PAGE_ENTRIES entries and MAX_PAGE_BYTES) on their way or arrived: 200,000 entries, about
 * 10 MiB on the wire and some 60 MB of decoded entries at most.
 */
export const PAGES_IN_FLIGHT = 20;

export interface CatchUpDeps {
  readonly self: Sender;
  readonly store: Store;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly peers: PeerTable;
  readonly limits: PeerLimits;
  /** Commits entries that came from a peer (anti-entropy's applyFromPeer). */
  apply(entries: readonly Entry[], from: Sender): Promise<void>;
}

/** A peer refused a windowed page as malformed: it predates windows, and is paged the old way. */
export class WindowsUnsupportedError extends Error {
  override readonly name = "WindowsUnsupportedError";
}

interface Asked {
  readonly window: SeqRange;
  readonly vv: Digest;
  readonly reply: Promise<SyncReply>;
}

/**
 * Pulls from `peer` everything of `theirs` (its vector) beyond `got` (what this node holds or
 * has received), in windows of one page each, and commits it in batches. Each request names
 * its window and carries what this node has committed, never the pages still on their way: the
 * peer believes a sync's vector as acknowledged. Returns when every window is in or `running()`
 * turns false; a failing peer rejects it, after what arrived valid is committed.
 */
export async function pullWindows(
  deps: CatchUpDeps,
  peer: PeerState,
  theirs: Digest,
  got: Map<OriginId, number>,
  running: () => boolean,
): Promise<void> {
  const { self, store, transport, peers } = deps;
  const windows: SeqRange[] = [];
  for (const range of missingRanges(theirs, got))
    for (let after = range.after; after < range.upTo; after += MAX_PAGE_ENTRIES)
      windows.push({
        origin: range.origin,
        after,
        upTo: Math.min(range.upTo, after + MAX_PAGE_ENTRIES),
      });
  const ask = (window: SeqRange): Asked => {
    // The committed vector: a snapshot the store replaces at each commit, never changes.
    const vv = store.digest();
    const reply = transport.send(peer.address, { kind: "sync", ...self, vv, window });
    reply.catch(() => undefined); // awaited in turn; not left unhandled if the pull ends first
    return { window, vv, reply };
  };
  const inFlight: Asked[] = [];
  const fill = () => {
    while (running() && inFlight.length < PAGES_IN_FLIGHT && windows.length > 0)
      inFlight.push(ask(windows.shift() as SeqRange));
  };
  let held: Entry[] = [];
  let from: Sender = self;
  let committing: Promise<void> = Promise.resolve();
  const commit = () => {
    const entries = held;
    held = [];
    if (entries.length === 0) return;
    committing = deps.apply(entries, from);
    committing.catch(() => undefined); // awaited before the next commit and at the end
  };
  let windowed = false; // a windowed page has come back: the peer knows windows
  try {
    fill();
    for (;;) {
      const asked = inFlight.shift();
      if (!asked || !running()) break;
      let reply: SyncReply;
      try {
        reply = await asked.reply;
      } catch (error) {
        if (!windowed && (error as { code?: unknown } | null)?.code === "malformed")
          throw new WindowsUnsupportedError(`${peer.label} refused a windowed page`);
        throw error;
      }
      windowed = true;
      from = reply;
      peers.contacted(peer, reply, patchDigest(asked.vv, reply.diff));
      checkEntries(reply.entries, got, deps.clock.now(), deps.limits);
      const { origin, upTo } = asked.window;
      let reached = asked.window.after;
      // A page is runs of one origin: its prefix is looked up once a run, and saved if it moved.
      let run: { origin: OriginId; start: number; to: number } | undefined;
      const saveRun = () => run && run.to !== run.start && got.set(run.origin, run.to);
      for (const e of reply.entries) {
        held.push(e);
        if (e.origin !== run?.origin) {
          saveRun();
          const start = got.get(e.origin) ?? 0;
          run = { origin: e.origin, start, to: start };
        }
        if (e.seq === run.to + 1) run.to = e.seq;
        if (e.origin === origin && e.seq > reached && e.seq <= upTo) reached = e.seq;
      }
      saveRun();
      if (reached < upTo) {
        // The page stopped at its byte bound: the rest of the window comes next, before the
        // windows behind it. A peer that sends nothing of a window it holds is failing.
        if (reached === asked.window.after)
          throw new Error(`${peer.label} sent nothing of ${origin} ${reached}..${upTo}`);
        inFlight.unshift(ask({ origin, after: reached, upTo }));
      }
      // The requests leave at the end of this turn, before the commit (on the next one) runs.
      fill();
      if (held.length >= CATCH_UP_BATCH) {
        await committing; // one commit at a time: what is held stays bounded
        commit();
      }
    }
  } catch (error) {
    // What arrived is valid whatever happened after: keep it, then report the failure.
    await committing.catch(() => undefined);
    commit();
    await committing.catch(() => undefined);
    throw error;
  }
  await committing;
  commit();
  await committing;
}
