// The gauges (README, "Observability") read from the node's state when Prometheus scrapes: the
// set's size, the origins held against their bound, the store's log file (and the counts of its
// restarts), the injected faults, and per peer its liveness, pending entries, clock skew and link.
// Nothing on a request's path touches them (metrics.ts has what the node observes as it goes).
import client from "prom-client";

/** A peer as the peer gauges show it, labelled by node name (its address until it answers). */
export interface PeerGauge {
  readonly peer: string;
  readonly up: boolean;
  readonly pending: number;
  /** Its clock minus this node's when its link opened, when measured. */
  readonly clockSkewSeconds: number | undefined;
  /** Bytes of requests on its link not yet answered (bounded by the link). */
  readonly unansweredBytes: number;
}

/** What the gauges read when scraped. */
export interface Gauges {
  readonly setSize: () => number;
  /**
   * Origins (node incarnations, one per start) in this node's version vector, and the most it
   * takes (LIKES_MAX_ORIGINS): past it a peer's entries of a new origin are refused for good.
   */
  readonly origins?: { readonly held: () => number; readonly max: number };
  /** The store's write-ahead log file, bytes (a SQLite store). */
  readonly walBytes?: () => number | undefined;
  /** The log's restarts and their time, seconds (a SQLite store with its checkpoint worker). */
  readonly walRestarts?: () => { readonly count: number; readonly seconds: number } | undefined;
  readonly peers: () => readonly PeerGauge[];
  /** The injected faults in force (LIKES_FAULTS=enabled), by peer (node name or *) and kind. */
  readonly faults?: () => readonly { readonly peer: string; readonly kind: string }[];
}

/** Registers the scrape-time gauges in `registry`, reading `gauges` at each scrape. */
export function registerGauges(
  registry: client.Registry<client.OpenMetricsContentType>,
  gauges: Gauges,
): void {
  const registers = [registry];
  new client.Gauge({
    name: "likes_set_size",
    help: "Distinct likes held by this node",
    registers,
    collect() {
      this.set(gauges.setSize());
    },
  });
  const origins = gauges.origins;
  if (origins) {
    new client.Gauge({
      name: "likes_origins",
      help: "Origins (node incarnations, one per start) in this node's version vector",
      registers,
      collect() {
        this.set(origins.held());
      },
    });
    new client.Gauge({
      name: "likes_origins_max",
      help: "LIKES_MAX_ORIGINS: past it a peer's entries of a new origin are refused for good",
      registers,
    }).set(origins.max);
  }
  const walBytes = gauges.walBytes;
  if (walBytes)
    new client.Gauge({
      name: "likes_store_wal_bytes",
      help: "Size of the store's write-ahead log file (it keeps its largest size until the node stops)",
      registers,
      collect() {
        const bytes = walBytes();
        if (bytes !== undefined) this.set(bytes);
      },
    });
  const walRestarts = gauges.walRestarts;
  if (walRestarts) {
    // Counters the worker keeps: read, not observed, at each scrape.
    const counter = (
      name: string,
      help: string,
      value: (r: { count: number; seconds: number }) => number,
    ) =>
      new client.Counter({
        name,
        help,
        registers,
        collect() {
          const restarts = walRestarts();
          if (restarts === undefined) return;
          this.reset();
          this.inc(value(restarts));
        },
      });
    counter(
      "likes_store_wal_restarts_total",
      "RESTART checkpoints the worker ran to start the store's write-ahead log over (the node's writes wait meanwhile)",
      (r) => r.count,
    );
    counter(
      "likes_store_wal_restart_seconds_total",
      "Time the write-ahead log's restarts took, during which the node's writes waited",
      (r) => r.seconds,
    );
  }
  const faults = gauges.faults;
  if (faults)
    new client.Gauge({
      name: "likes_fault_active",
      help: "1 for each injected fault in force (LIKES_FAULTS=enabled), by peer and kind",
      labelNames: ["peer", "kind"] as const,
      registers,
      collect() {
        this.reset();
        for (const { peer, kind } of faults()) this.set({ peer, kind }, 1);
      },
    });
  peerGauge(
    registry,
    gauges,
    "likes_replication_pending",
    "Entries held here that a peer is not yet known to hold",
    (p) => p.pending,
  );
  peerGauge(
    registry,
    gauges,
    "likes_peer_up",
    "1 when the last exchange with a peer succeeded, 0 when it failed",
    (p) => (p.up ? 1 : 0),
  );
  peerGauge(
    registry,
    gauges,
    "likes_peer_clock_skew_seconds",
    "A peer's clock minus this node's, measured when its link opened (± half a round trip)",
    (p) => p.clockSkewSeconds,
  );
  peerGauge(
    registry,
    gauges,
    "likes_peer_link_unanswered_bytes",
    "Bytes of requests sent on a peer's link and not yet answered: bounded, a stalled peer fails sends past the bound",
    (p) => p.unansweredBytes,
  );
}

/** A gauge per peer, read from the peer table at each scrape. */
function peerGauge(
  registry: client.Registry<client.OpenMetricsContentType>,
  gauges: Gauges,
  name: string,
  help: string,
  value: (peer: PeerGauge) => number | undefined,
): void {
  new client.Gauge({
    name,
    help,
    labelNames: ["peer"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const peer of gauges.peers()) {
        const v = value(peer);
        if (v !== undefined) this.set({ peer: peer.peer }, v);
      }
    },
  });
}
