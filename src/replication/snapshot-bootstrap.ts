// The joining end of a snapshot bootstrap: a node that starts with an empty data directory asks
// its peers what they hold, then the one that holds the most (above the threshold) for a
// snapshot, reads it in chunks (a few in flight), asks the peer for the copy's checksum and
// soundness, and has it checked and installed. Any failure leaves the
// directory empty and moves on to the next peer; with none, the node starts empty and catches up
// by anti-entropy as before.
import { SnapshotRefusedError, type InstallReport } from "../store/index.js";
import { snapshotSpan } from "../telemetry/spans.js";
import type { Logger, Metrics } from "../telemetry/types.js";
import type { Clock, PeerAddress, Transport } from "./ports.js";
import {
  MAX_SNAPSHOT_CHUNK,
  type SnapshotBeginReply,
  type SnapshotChunkReply,
  type Sender,
} from "./protocol.js";

/** Chunk requests in flight: enough to keep a link busy across a round trip. */
export const CHUNKS_IN_FLIGHT = 4;

/** Where a snapshot's bytes go: a download in the data directory (store/snapshot.ts). */
export interface SnapshotSink {
  write(offset: number, data: Buffer): Promise<void>;
  /**
   * Checks what was written against the promised size and the serving node's checksum and
   * installs it; refused, removes it.
   */
  install(checksum: Buffer): Promise<InstallReport>;
  abort(): Promise<void>;
}

export interface BootstrapProgress {
  readonly peer: PeerAddress;
  readonly received: number;
  readonly bytes: number;
}

export interface BootstrapDeps {
  /** For the snapshot's requests: their timeout allows for a peer copying a large store. */
  readonly transport: Transport;
  /** For the first question to each peer, answered at once: a short timeout. */
  readonly probe: Transport;
  readonly peers: readonly PeerAddress[];
  /** Who asks: the node's name and a throwaway origin (its own comes with its store). */
  readonly self: Sender;
  /** A snapshot is worth it only from a peer that holds more entries than this. */
  readonly threshold: number;
  readonly open: (promised: { bytes: number }) => Promise<SnapshotSink>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Pick<Metrics, "snapshotBytes" | "snapshotEnded">;
  readonly progress?: (progress: BootstrapProgress) => void;
  /** Aborted, the node is stopping: no next peer is tried, and a failed download is no fault. */
  readonly stop?: AbortSignal;
}

export type BootstrapOutcome =
  | { readonly installed: false }
  | {
      readonly installed: true;
      readonly peer: PeerAddress;
      readonly bytes: number;
      readonly entries: number;
      readonly seconds: number;
    };

/**
 * Asks every peer at once what it holds (a snapshot-begin no store can meet: answered at once,
 * no copy made, on `probe`, whose requests time out fast, so that a peer that is down or hung
 * delays the start by that much only); then installs a snapshot from the peer that holds the
 * most, if more than the threshold, or the next one if that fails; or none.
 */
export async function bootstrapFromSnapshot(deps: BootstrapDeps): Promise<BootstrapOutcome> {
  const held = await Promise.all(
    deps.peers.map(async (peer) => {
      try {
        const reply = await deps.probe.send(peer, {
          kind: "snapshot-begin",
          ...deps.self,
          minEntries: Number.MAX_SAFE_INTEGER,
        });
        return { peer, entries: reply.entryCount };
      } catch (error) {
        if (!deps.stop?.aborted)
          deps.logger.info("no snapshot from this peer: unreachable", {
            peer,
            error: String(error),
          });
        return { peer, entries: -1 };
      }
    }),
  );
  const worth = held
    .filter((p) => p.entries > deps.threshold)
    .sort((a, b) => b.entries - a.entries);
  if (worth.length === 0 && held.some((p) => p.entries >= 0))
    deps.logger.info("no peer holds more entries than the snapshot threshold", {
      threshold: deps.threshold,
      held: Object.fromEntries(held.map((p) => [p.peer, p.entries])),
    });
  for (const { peer } of worth) {
    if (deps.stop?.aborted) break;
    const outcome = await fromPeer(deps, peer);
    if (outcome.installed) return outcome;
  }
  return { installed: false };
}

async function fromPeer(deps: BootstrapDeps, peer: PeerAddress): Promise<BootstrapOutcome> {
  const { transport, self, logger, metrics, clock } = deps;
  const startedAt = clock.now();
  return snapshotSpan(peer, async (attributes) => {
    let begin: SnapshotBeginReply;
    try {
      begin = await transport.send(peer, {
        kind: "snapshot-begin",
        ...self,
        minEntries: deps.threshold + 1,
      });
    } catch (error) {
      logger.info("no snapshot from this peer: unreachable", { peer, error: String(error) });
      return { installed: false };
    }
    attributes(begin.bytes, begin.entryCount);
    if (begin.id === 0) {
      logger.info("no snapshot from this peer", {
        peer,
        entries: begin.entryCount,
        threshold: deps.threshold,
      });
      return { installed: false };
    }
    logger.info("installing a snapshot", {
      peer,
      bytes: begin.bytes,
      entries: begin.entryCount,
    });
    let sink: SnapshotSink | undefined;
    try {
      sink = await deps.open({ bytes: begin.bytes });
      await download(deps, peer, begin, sink);
      // The serving node checked its copy while the chunks came: its checksum, and whether
      // SQLite's quick_check found it sound (a check this node would run only after the last
      // byte, seconds on its critical path).
      const end = await transport.send(peer, { kind: "snapshot-end", ...self, id: begin.id });
      if (end.id !== begin.id)
        throw new SnapshotRefusedError(`the end of snapshot ${end.id}, asked ${begin.id}`);
      if (end.problem)
        throw new SnapshotRefusedError(`the serving peer found its copy damaged: ${end.problem}`);
      const report = await sink.install(end.checksum);
      if ("repaged" in report)
        logger.info("snapshot rewritten in this node's page size", {
          peer,
          pageSizeFrom: report.repaged.from,
          pageSizeTo: report.repaged.to,
        });
      else if ("kept" in report)
        logger.warn("snapshot installed in its own page size: it could not be rewritten", {
          peer,
          pageSize: report.kept.pageSize,
          error: report.kept.error,
        });
    } catch (error) {
      await sink?.abort();
      if (deps.stop?.aborted) {
        logger.info("snapshot abandoned: the node is stopping", { peer });
        return { installed: false };
      }
      const refused = error instanceof SnapshotRefusedError;
      metrics.snapshotEnded("install", refused ? "refused" : "failed", 0);
      logger.warn(refused ? "snapshot refused" : "snapshot failed", {
        peer,
        error: String(error),
      });
      return { installed: false };
    }
    const seconds = (clock.now() - startedAt) / 1000;
    metrics.snapshotEnded("install", "ok", seconds);
    return { installed: true, peer, bytes: begin.bytes, entries: begin.entryCount, seconds };
  });
}

/** Reads every chunk, CHUNKS_IN_FLIGHT at a time, and writes them in order. */
async function download(
  deps: BootstrapDeps,
  peer: PeerAddress,
  begin: SnapshotBeginReply,
  sink: SnapshotSink,
): Promise<void> {
  const { transport, self, metrics } = deps;
  const chunks = Math.ceil(begin.bytes / MAX_SNAPSHOT_CHUNK);
  // A queue, so that a chunk written is not kept alive by it.
  const pending: Promise<SnapshotChunkReply>[] = [];
  const ask = (index: number) => {
    const reply = transport.send(peer, {
      kind: "snapshot-chunk",
      ...self,
      id: begin.id,
      offset: index * MAX_SNAPSHOT_CHUNK,
    });
    // Awaited in order below; one that fails while an earlier one is awaited is not unhandled.
    reply.catch(() => {});
    pending.push(reply);
  };
  for (let i = 0; i < Math.min(CHUNKS_IN_FLIGHT, chunks); i++) ask(i);
  for (let i = 0; i < chunks; i++) {
    const reply = await (pending.shift() as Promise<SnapshotChunkReply>);
    if (i + CHUNKS_IN_FLIGHT < chunks) ask(i + CHUNKS_IN_FLIGHT);
    const offset = i * MAX_SNAPSHOT_CHUNK;
    const expected = Math.min(MAX_SNAPSHOT_CHUNK, begin.bytes - offset);
    if (reply.id !== begin.id || reply.offset !== offset || reply.data.length !== expected)
      throw new SnapshotRefusedError(
        `chunk ${i} came as snapshot ${reply.id} at ${reply.offset} with ${reply.data.length} bytes; ` +
          `asked snapshot ${begin.id} at ${offset}, ${expected} bytes`,
      );
    metrics.snapshotBytes("in", reply.data.length);
    await sink.write(offset, reply.data);
    deps.progress?.({ peer, received: offset + reply.data.length, bytes: begin.bytes });
  }
}
