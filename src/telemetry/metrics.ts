// The Metrics port (types.ts) over prom-client: the metric names of README's "Observability", a
// contract for the dashboards. An applied batch also makes its apply spans here, so it is
// reported once. The gauges read from the node's state at each scrape are gauges.ts.
import client from "prom-client";
import { nodeNameOf, type Entry } from "../crdt/index.js";
import { toPrometheusText } from "./exposition.js";
import { registerGauges, type Gauges } from "./gauges.js";
import { HotHistogram, type HistogramSeries } from "./histogram.js";
import { recordApplied } from "./spans.js";
import { traceIdOf } from "./trace-context.js";
import type {
  Metrics,
  OwnEntry,
  PeerMessageResult,
  ReplicationPath,
  SnapshotResult,
  SnapshotRole,
} from "./types.js";

/**
 * How often the event-loop lag histogram (nodejs_eventloop_lag_*) samples the loop, by a timer.
 * prom-client's 10 ms woke an idle node 100 times a second: 40% of its idle CPU (13 ms a second
 * down to 8 on this machine, Node 24). A stall longer than this is measured whole either way,
 * and the 100 samples between two scrapes 5 s apart (both Prometheus configs) keep a p99
 * meaningful.
 */
const EVENT_LOOP_SAMPLE_MS = 50;

export const OPENMETRICS_CONTENT_TYPE = client.Registry.OPENMETRICS_CONTENT_TYPE;
export const PROMETHEUS_CONTENT_TYPE = client.Registry.PROMETHEUS_CONTENT_TYPE;

// Lag and convergence: sub-millisecond on loopback, seconds across a partition. Finer from 5 to
// 25 ms, where a loaded cluster's p99 lies: a quantile is interpolated inside its bucket, and
// with 10 and 25 ms alone `make demo RATE=1500` read a convergence p99 of 21.9 ms (14 now).
const LAG_BUCKETS = [
  0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
  60,
];
/** Distinct `origin` label values at most (node names); the rest are counted as "other". */
export const MAX_ORIGIN_LABELS = 64;
const OTHER_ORIGINS = "other";
// A snapshot: under a second for a small store, a minute or more for tens of millions of likes.
const SNAPSHOT_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300];
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** A route, method and code's requests: counted until the next scrape, timed at once. */
interface ServedSeries {
  readonly counterLabels: { readonly route: string; readonly code: string };
  unscraped: number;
  readonly duration: HistogramSeries;
}

/**
 * The metrics (README, "Observability") in one prom-client registry. The registry speaks
 * OpenMetrics (the only format that carries exemplars); plain Prometheus text is derived from it
 * on request.
 */
export class PromMetrics implements Metrics {
  readonly registry = new client.Registry<client.OpenMetricsContentType>();
  private readonly duration;
  private readonly accepted;
  private readonly lag;
  private readonly convergence;
  private readonly messages;
  private readonly bytes;
  private readonly commit;
  private readonly snapshots;
  private readonly snapshotBytesTotal;
  private readonly snapshotDuration;
  private readonly originLabels = new Set<string>();
  /** Each route, method and code served: what a request adds to, found by one lookup. */
  private readonly served = new Map<string, ServedSeries>();

  constructor(gauges: Gauges) {
    this.registry.setContentType(OPENMETRICS_CONTENT_TYPE);
    const registers = [this.registry];
    client.collectDefaultMetrics({
      register: this.registry,
      eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS,
    });
    const served = this.served;
    new client.Counter({
      name: "likes_requests_total",
      help: "Public API requests by route and status code",
      labelNames: ["route", "code"] as const,
      registers,
      // Requests are counted in `served` and added here when scraped: an increment a request
      // costs prom-client's label hashing.
      collect() {
        for (const series of served.values())
          if (series.unscraped > 0) {
            this.inc(series.counterLabels, series.unscraped);
            series.unscraped = 0;
          }
      },
    });
    this.duration = new HotHistogram(
      "http_request_duration_seconds",
      "Public API request duration",
      ["route", "method", "code"],
      LATENCY_BUCKETS,
      this.registry,
    );
    this.accepted = presetCounter(
      this.registry,
      "likes_accepted_total",
      "Likes accepted first-hand: new, or a duplicate of one already held",
      "result",
      ["new", "duplicate"],
    );
    registerGauges(this.registry, gauges);
    this.lag = new HotHistogram(
      "likes_replication_lag_seconds",
      "Receiver clock minus the origin's acceptance time of each entry applied here",
      ["origin", "path"],
      LAG_BUCKETS,
      this.registry,
    );
    this.convergence = new HotHistogram(
      "likes_convergence_seconds",
      "On the origin: from accepting a like until every known peer acknowledged it",
      [],
      LAG_BUCKETS,
      this.registry,
    ).seriesOf({});
    this.messages = new client.Counter({
      name: "likes_gossip_messages_total",
      help: "Peer requests sent (ok, error) and received but refused (rejected), by kind",
      labelNames: ["kind", "result"] as const,
      registers,
    });
    this.bytes = presetCounter(
      this.registry,
      "likes_gossip_bytes_total",
      "Bytes of peer link frames (length, payload and tag), by direction",
      "direction",
      ["in", "out"],
    );
    this.commit = new client.Histogram({
      name: "likes_store_commit_seconds",
      help: "Duration of one group commit (one SQLite transaction)",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.snapshots = new client.Counter({
      name: "likes_snapshots_total",
      help: "Snapshots installed here (role install) or served to a joining node (role serve), by result",
      labelNames: ["role", "result"] as const,
      registers,
    });
    for (const role of ["install", "serve"])
      for (const result of ["ok", "refused", "failed"]) this.snapshots.inc({ role, result }, 0);
    this.snapshotBytesTotal = presetCounter(
      this.registry,
      "likes_snapshot_bytes_total",
      "Bytes of snapshot chunks received (in) or sent (out)",
      "direction",
      ["in", "out"],
    );
    this.snapshotDuration = new client.Histogram({
      name: "likes_snapshot_duration_seconds",
      help: "From asking for a snapshot to installing it (install), or from making one to answering its end (serve)",
      labelNames: ["role"] as const,
      buckets: SNAPSHOT_BUCKETS,
      registers,
    });
  }

  requestServed(route: string, method: string, code: number, seconds: number): void {
    const key = `${code} ${method} ${route}`;
    let series = this.served.get(key);
    if (!series) {
      const labels = { route, method, code: String(code) };
      series = {
        counterLabels: { route, code: labels.code },
        unscraped: 0,
        duration: this.duration.seriesOf(labels),
      };
      this.served.set(key, series);
    }
    series.unscraped++;
    series.duration.observe(seconds);
  }

  likeAccepted(isNew: boolean): void {
    this.accepted.inc({ result: isNew ? "new" : "duplicate" });
  }

  storeCommitted(seconds: number): void {
    this.commit.observe(seconds);
  }

  peerMessage(kind: string, result: PeerMessageResult): void {
    this.messages.inc({ kind, result });
  }

  peerBytes(direction: "in" | "out", bytes: number): void {
    this.bytes.inc({ direction }, bytes);
  }

  /** Lag of each applied entry, with its trace id as exemplar; and its apply span. */
  entriesApplied(entries: readonly Entry[], path: ReplicationPath, now: number): void {
    recordApplied(entries, path, now);
    // Entries come in runs of one origin (a page, a push): its series is looked up once a run.
    let origin: string | undefined;
    let series: HistogramSeries | undefined;
    for (const entry of entries) {
      if (entry.origin !== origin || !series) {
        origin = entry.origin;
        series = this.lag.seriesOf({ origin: this.originLabel(nodeNameOf(entry.origin)), path });
      }
      series.observe(Math.max(0, now - entry.ts) / 1000, traceIdOf(entry.traceparent));
    }
  }

  /**
   * The `origin` label: a node name, for the first MAX_ORIGIN_LABELS names seen, and "other"
   * after: the exposition stays small whatever names peers send (a cluster has a few nodes).
   */
  private originLabel(name: string): string {
    if (this.originLabels.has(name)) return name;
    if (this.originLabels.size >= MAX_ORIGIN_LABELS) return OTHER_ORIGINS;
    this.originLabels.add(name);
    return name;
  }

  entryConverged(entry: OwnEntry, seconds: number): void {
    this.convergence.observe(seconds, traceIdOf(entry.traceparent));
  }

  snapshotBytes(direction: "in" | "out", bytes: number): void {
    this.snapshotBytesTotal.inc({ direction }, bytes);
  }

  snapshotEnded(role: SnapshotRole, result: SnapshotResult, seconds: number): void {
    this.snapshots.inc({ role, result });
    if (result === "ok") this.snapshotDuration.observe({ role }, seconds);
  }

  /** The exposition a scraper asked for: OpenMetrics (with exemplars) or Prometheus text. */
  async render(accept: string | undefined): Promise<{ contentType: string; body: string }> {
    const openMetrics = await this.registry.metrics();
    if (accept?.includes("application/openmetrics-text"))
      return { contentType: OPENMETRICS_CONTENT_TYPE, body: openMetrics };
    return { contentType: PROMETHEUS_CONTENT_TYPE, body: toPrometheusText(openMetrics) };
  }
}

/** A counter whose every value of its one label exists from the start, so rates are defined. */
function presetCounter<L extends string>(
  registry: client.Registry<client.OpenMetricsContentType>,
  name: string,
  help: string,
  label: L,
  values: readonly string[],
): client.Counter<L> {
  const counter = new client.Counter({ name, help, labelNames: [label], registers: [registry] });
  for (const value of values) counter.inc({ [label]: value } as client.LabelValues<L>, 0);
  return counter;
}
