// The replication core's vocabulary, shared with the HTTP edge and telemetry.
import type { Entry } from "../crdt/index.js";
import type { PeerAddress } from "./ports.js";
import type { Sender } from "./protocol.js";

export type ReplicationPath = "push" | "sync";

/** What the replicator reports as it works; telemetry turns it into metrics and spans. */
export interface ReplicationObserver {
  /** Entries newly stored here that came from a peer. */
  applied?(entries: readonly Entry[], path: ReplicationPath, from: Sender): void;
  /** An own entry is now held by every known peer, `seconds` after it was accepted. */
  converged?(entry: OwnEntry, seconds: number): void;
}

export interface OwnEntry {
  readonly seq: number;
  readonly ts: number;
  readonly traceparent?: string;
}

export type Consistency = "local" | "quorum" | "all";

/** What a write reached: `acks` nodes hold the like, `required` were asked for. */
export interface WriteOutcome {
  readonly isNew: boolean;
  readonly acks: number;
  readonly required: number;
}

export interface PeerView {
  readonly address: PeerAddress;
  readonly node: string | null;
  readonly origin: string | null;
  readonly up: boolean | null;
  readonly lastContact: string | null;
  readonly acked: Record<string, number>;
  readonly pending: number;
}

export interface ClusterView {
  readonly node: string;
  readonly origin: string;
  readonly vv: Record<string, number>;
  readonly peers: readonly PeerView[];
}
