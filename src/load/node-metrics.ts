// What the scenario reads of a node's GET /metrics (admin port, Prometheus text): set size,
// likes accepted, pending entries and up/down per peer, faults in force and the replication
// lag histogram; and a quantile of the lag between two reads, as histogram_quantile computes it.

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** The samples of a Prometheus text exposition; comments and blank lines skipped. */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(LABEL))
      labels[l[1] ?? ""] = (l[2] ?? "").replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    const raw = m[3] ?? "";
    const value = raw === "+Inf" ? Infinity : raw === "-Inf" ? -Infinity : Number(raw);
    samples.push({ name: m[1] ?? "", labels, value });
  }
  return samples;
}

/** A histogram summed over its labels: cumulative counts per upper bound, ascending. */
export interface Histogram {
  readonly buckets: readonly (readonly [le: number, count: number])[];
  readonly count: number;
}

export interface NodeMetrics {
  readonly setSize: number;
  readonly accepted: { readonly new: number; readonly duplicate: number };
  /** likes_replication_pending by peer. */
  readonly pending: ReadonlyMap<string, number>;
  /** likes_peer_up by peer (1 up, 0 down). */
  readonly up: ReadonlyMap<string, number>;
  /** Faults in force (likes_fault_active = 1), as "peer kind". */
  readonly faults: readonly string[];
  /** likes_replication_lag_seconds over every origin and path. */
  readonly lag: Histogram;
  /** likes_convergence_seconds: on the origin, accepted → acknowledged by every peer. */
  readonly convergence: Histogram;
  /** Entries applied (likes_replication_lag_seconds_count) by path: push, sync. */
  readonly applied: Readonly<Record<string, number>>;
}

export class MetricsFormatError extends Error {
  override readonly name = "MetricsFormatError";
}

function one(
  samples: readonly Sample[],
  name: string,
  labels: Record<string, string> = {},
): number {
  const s = samples.find(
    (x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v),
  );
  if (!s) throw new MetricsFormatError(`no ${name}${JSON.stringify(labels)}: not a likes node?`);
  return s.value;
}

function byLabel(samples: readonly Sample[], name: string, label: string): Map<string, number> {
  const map = new Map<string, number>();
  for (const s of samples)
    if (s.name === name) {
      const key = s.labels[label] ?? "";
      map.set(key, (map.get(key) ?? 0) + s.value);
    }
  return map;
}

export function nodeMetricsOf(text: string): NodeMetrics {
  const samples = parseExposition(text);
  const applied = Object.fromEntries(
    byLabel(samples, "likes_replication_lag_seconds_count", "path"),
  );
  return {
    setSize: one(samples, "likes_set_size"),
    accepted: {
      new: one(samples, "likes_accepted_total", { result: "new" }),
      duplicate: one(samples, "likes_accepted_total", { result: "duplicate" }),
    },
    pending: byLabel(samples, "likes_replication_pending", "peer"),
    up: byLabel(samples, "likes_peer_up", "peer"),
    faults: samples
      .filter((s) => s.name === "likes_fault_active" && s.value === 1)
      .map((s) => `${s.labels.peer ?? "?"} ${s.labels.kind ?? "?"}`),
    lag: histogramOf(samples, "likes_replication_lag_seconds"),
    convergence: histogramOf(samples, "likes_convergence_seconds"),
    applied,
  };
}

/** A histogram's buckets and count, summed over its other labels. */
function histogramOf(samples: readonly Sample[], name: string): Histogram {
  const byLe = new Map<number, number>();
  let count = 0;
  for (const s of samples)
    if (s.name === `${name}_bucket`) {
      const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
      byLe.set(le, (byLe.get(le) ?? 0) + s.value);
    } else if (s.name === `${name}_count`) count += s.value;
  return { buckets: [...byLe].sort(([a], [b]) => a - b), count };
}

/** The histogram of what was observed between two reads of the same node. */
export function histogramDelta(before: Histogram | undefined, after: Histogram): Histogram {
  if (!before) return after;
  const earlier = new Map(before.buckets);
  return {
    buckets: after.buckets.map(([le, n]) => [le, Math.max(0, n - (earlier.get(le) ?? 0))] as const),
    count: Math.max(0, after.count - before.count),
  };
}

/** Adds histograms with the same bounds (several nodes' lag). */
export function histogramSum(histograms: readonly Histogram[]): Histogram {
  const byLe = new Map<number, number>();
  let count = 0;
  for (const h of histograms) {
    count += h.count;
    for (const [le, n] of h.buckets) byLe.set(le, (byLe.get(le) ?? 0) + n);
  }
  return { buckets: [...byLe].sort(([a], [b]) => a - b), count };
}

/**
 * The q-quantile in seconds, interpolated inside its bucket as Prometheus' histogram_quantile
 * does (so the number matches the dashboards' lag panels); undefined without observations. In
 * the +Inf bucket it answers the highest finite bound.
 */
export function histogramQuantile(q: number, h: Histogram): number | undefined {
  const total = h.buckets.at(-1)?.[1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, n] of h.buckets) {
    if (n >= rank) {
      if (le === Infinity) return lower;
      if (n === below) return le;
      return lower + (le - lower) * ((rank - below) / (n - below));
    }
    lower = le;
    below = n;
  }
  return lower;
}
