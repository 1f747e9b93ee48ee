import client from "prom-client";
import { nodeNameOf, type Entry } from "../crdt/index.js";
import type {
  ClusterView,
  OwnEntry,
  ReplicationObserver,
  ReplicationPath,
} from "../replication/replicator.js";
import type { Sender } from "../replication/protocol.js";
import type { TransportStats } from "../replication/http-transport.js";
import { traceIdOf } from "../replication/trace-context.js";

export const OPENMETRICS_CONTENT_TYPE = client.Registry.OPENMETRICS_CONTENT_TYPE;
export const PROMETHEUS_CONTENT_TYPE = client.Registry.PROMETHEUS_CONTENT_TYPE;

// Lag and convergence: sub-millisecond on loopback, seconds across a partition.
const LAG_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export interface Gauges {
  readonly setSize: () => number;
  readonly cluster: () => ClusterView;
}

/**
 * The metrics of DESIGN §6 in one prom-client registry. The registry speaks OpenMetrics (the
 * only format that carries exemplars); plain Prometheus text is derived from it on request.
 */
export class Metrics {
  readonly registry = new client.Registry<client.OpenMetricsContentType>();
  private readonly requests;
  private readonly duration;
  private readonly accepted;
  private readonly lag;
  private readonly convergence;
  private readonly messages;
  private readonly bytes;
  private readonly commit;

  constructor(gauges: Gauges) {
    this.registry.setContentType(OPENMETRICS_CONTENT_TYPE);
    const registers = [this.registry];
    client.collectDefaultMetrics({ register: this.registry });
    this.requests = new client.Counter({
      name: "likes_requests_total",
      help: "Public API requests by route and status code",
      labelNames: ["route", "code"] as const,
      registers,
    });
    this.duration = new client.Histogram({
      name: "http_request_duration_seconds",
      help: "Public API request duration",
      labelNames: ["route", "method", "code"] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.accepted = new client.Counter({
      name: "likes_accepted_total",
      help: "Likes accepted first-hand: new, or a duplicate of one already held",
      labelNames: ["result"] as const,
      registers,
    });
    // Both results exist from the start, so that rates are defined before the first like.
    this.accepted.inc({ result: "new" }, 0);
    this.accepted.inc({ result: "duplicate" }, 0);
    new client.Gauge({
      name: "likes_set_size",
      help: "Distinct likes held by this node",
      registers,
      collect() {
        this.set(gauges.setSize());
      },
    });
    this.lag = new client.Histogram({
      name: "likes_replication_lag_seconds",
      help: "Receiver clock minus the origin's acceptance time of each entry applied here",
      labelNames: ["origin", "path"] as const,
      buckets: LAG_BUCKETS,
      enableExemplars: true,
      registers,
    });
    this.convergence = new client.Histogram({
      name: "likes_convergence_seconds",
      help: "On the origin: from accepting a like until every known peer acknowledged it",
      buckets: LAG_BUCKETS,
      enableExemplars: true,
      registers,
    });
    new client.Gauge({
      name: "likes_replication_pending",
      help: "Entries held here that a peer is not yet known to hold",
      labelNames: ["peer"] as const,
      registers,
      collect() {
        this.reset();
        for (const peer of gauges.cluster().peers)
          this.set({ peer: peer.node ?? peer.address }, peer.pending);
      },
    });
    new client.Gauge({
      name: "likes_peer_up",
      help: "1 when the last exchange with a peer succeeded, 0 when it failed",
      labelNames: ["peer"] as const,
      registers,
      collect() {
        this.reset();
        for (const peer of gauges.cluster().peers)
          this.set({ peer: peer.node ?? peer.address }, peer.up === false ? 0 : 1);
      },
    });
    this.messages = new client.Counter({
      name: "likes_gossip_messages_total",
      help: "Peer requests sent (ok, error) and received but refused (rejected), by kind",
      labelNames: ["kind", "result"] as const,
      registers,
    });
    this.bytes = new client.Counter({
      name: "likes_gossip_bytes_total",
      help: "Bytes of peer message bodies, by direction",
      labelNames: ["direction"] as const,
      registers,
    });
    this.bytes.inc({ direction: "in" }, 0);
    this.bytes.inc({ direction: "out" }, 0);
    this.commit = new client.Histogram({
      name: "likes_store_commit_seconds",
      help: "Duration of one group commit (one SQLite transaction)",
      buckets: LATENCY_BUCKETS,
      registers,
    });
  }

  request(route: string, method: string, code: number, seconds: number): void {
    this.requests.inc({ route, code: String(code) });
    this.duration.observe({ route, method, code: String(code) }, seconds);
  }

  likeAccepted(isNew: boolean): void {
    this.accepted.inc({ result: isNew ? "new" : "duplicate" });
  }

  committed(seconds: number): void {
    this.commit.observe(seconds);
  }

  readonly transport: TransportStats = {
    message: (kind, result) => this.messages.inc({ kind, result }),
    bytes: (direction, n) => this.bytes.inc({ direction }, n),
  };

  /** Lag of applied entries and convergence of own entries, with trace ids as exemplars. */
  replicationObserver(now: () => number): ReplicationObserver {
    return {
      applied: (entries: readonly Entry[], path: ReplicationPath, _from: Sender) => {
        const at = now();
        for (const entry of entries) {
          const labels = { origin: nodeNameOf(entry.origin), path };
          const value = Math.max(0, at - entry.ts) / 1000;
          const traceId = traceIdOf(entry.traceparent);
          if (traceId) this.lag.observe({ labels, value, exemplarLabels: exemplar(traceId) });
          else this.lag.observe({ labels, value });
        }
      },
      converged: (entry: OwnEntry, seconds: number) => {
        const traceId = traceIdOf(entry.traceparent);
        if (traceId)
          this.convergence.observe({
            labels: {},
            value: seconds,
            exemplarLabels: exemplar(traceId),
          });
        else this.convergence.observe({ labels: {}, value: seconds });
      },
    };
  }

  /** The exposition a scraper asked for: OpenMetrics (with exemplars) or Prometheus text. */
  async render(accept: string | undefined): Promise<{ contentType: string; body: string }> {
    const openMetrics = await this.registry.metrics();
    if (accept?.includes("application/openmetrics-text"))
      return { contentType: OPENMETRICS_CONTENT_TYPE, body: openMetrics };
    return { contentType: PROMETHEUS_CONTENT_TYPE, body: toPrometheusText(openMetrics) };
  }
}

/** Exemplar labels: prom-client types them with the metric's own label names, wrongly. */
function exemplar<T extends string>(traceId: string): client.LabelValues<T> {
  return { trace_id: traceId } as client.LabelValues<string>;
}

/**
 * OpenMetrics as prom-client writes it, rewritten as Prometheus text 0.0.4: exemplars and the
 * EOF marker dropped, counter families named with their `_total` samples.
 */
export function toPrometheusText(openMetrics: string): string {
  const counters = new Set<string>();
  for (const match of openMetrics.matchAll(/^# TYPE (\S+) counter$/gm))
    counters.add(match[1] as string);
  const lines: string[] = [];
  for (const line of openMetrics.split("\n")) {
    if (line === "# EOF" || line === "") continue;
    const meta = /^# (HELP|TYPE) (\S+)( .*)?$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string | undefined];
      lines.push(`# ${kind} ${counters.has(name) ? `${name}_total` : name}${rest ?? ""}`);
      continue;
    }
    const exemplar = line.indexOf(" # {");
    lines.push(exemplar === -1 ? line : line.slice(0, exemplar));
  }
  return lines.join("\n") + "\n";
}
