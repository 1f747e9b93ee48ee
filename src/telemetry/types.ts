// The small interfaces through which the rest of the code reports what it does: the `Logger`
// and the `Metrics` port. Only src/telemetry knows winston, prom-client and the OTel SDK.
import type { Entry } from "../crdt/index.js";

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  error(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
}

/** A logger that drops everything: for unit tests and the simulation. */
export const silentLogger: Logger = {
  error: () => {},
  warn: () => {},
  info: () => {},
  debug: () => {},
};

/** How an entry reached a node: pushed by its origin or a relay, or pulled by anti-entropy. */
export type ReplicationPath = "push" | "sync";
/** A peer message sent (ok, error), or received and refused (rejected). */
export type PeerMessageResult = "ok" | "error" | "rejected";

/** How a snapshot ended: installed or served whole, refused (bad bytes), or failed (I/O, link). */
export type SnapshotResult = "ok" | "refused" | "failed";
/** Which end of a snapshot: the joining node installs it, a peer serves it. */
export type SnapshotRole = "install" | "serve";

/** An own entry, as the convergence metric needs it. */
export type OwnEntry = Pick<Entry, "seq" | "ts" | "traceparent">;

/**
 * The events the node reports, defined once: producers (the HTTP edge, the store, the peer
 * transport, the replication core) call these; telemetry turns each into metrics, exemplars
 * and spans (telemetry/metrics.ts).
 */
export interface Metrics {
  /** A public request was answered: its route ("unmatched" when none), method, status, time. */
  requestServed(route: string, method: string, code: number, seconds: number): void;
  /** A like was accepted first-hand: new, or a repeat of one already held. */
  likeAccepted(isNew: boolean): void;
  /** One group commit (one transaction) took `seconds`. */
  storeCommitted(seconds: number): void;
  peerMessage(kind: string, result: PeerMessageResult): void;
  /** Bytes of peer link frames, whole: length, payload and tag. */
  peerBytes(direction: "in" | "out", bytes: number): void;
  /** Entries from a peer newly stored here, at `now` (ms): lag, and the apply span of each. */
  entriesApplied(entries: readonly Entry[], path: ReplicationPath, now: number): void;
  /** An own entry is now held by every known peer, `seconds` after it was accepted. */
  entryConverged(entry: OwnEntry, seconds: number): void;
  /** Bytes of snapshot chunks received (in, a joining node) or sent (out, a serving peer). */
  snapshotBytes(direction: "in" | "out", bytes: number): void;
  /** A snapshot ended, `seconds` after it began. */
  snapshotEnded(role: SnapshotRole, result: SnapshotResult, seconds: number): void;
}

/** Metrics that record nothing: for unit tests and the simulation. */
export const noMetrics: Metrics = {
  requestServed: () => {},
  likeAccepted: () => {},
  storeCommitted: () => {},
  peerMessage: () => {},
  peerBytes: () => {},
  entriesApplied: () => {},
  entryConverged: () => {},
  snapshotBytes: () => {},
  snapshotEnded: () => {},
};
