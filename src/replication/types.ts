// The replication core's vocabulary, shared with the HTTP edge and telemetry.
import type { PeerAddress } from "./ports.js";

export type { ReplicationPath } from "../telemetry/types.js";

export type Consistency = "local" | "quorum" | "all";

/** A like that reached the node once its stop had begun: no peer would get it from here. */
export class WritesStoppedError extends Error {
  override readonly name = "WritesStoppedError";
  constructor() {
    super("the node is stopping and takes no more likes");
  }
}

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
  /** The peer's clock minus this node's, in ms, as its link's handshake showed it (null: none). */
  readonly clockSkewMs: number | null;
}

export interface ClusterView {
  readonly node: string;
  readonly origin: string;
  readonly vv: Record<string, number>;
  readonly peers: readonly PeerView[];
}
