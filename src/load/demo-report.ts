// The scenario's summary: its JSON shape (--json) and the one screen a person reads, ending
// with where to look in the observability stack.
import type { Phase } from "./demo-steps.js";
import type { Summary } from "./stats.js";

export interface TracedLike {
  readonly phase: Phase;
  readonly node: string;
  readonly post: string;
  readonly user: string;
  readonly traceId: string;
  /** The answer's status; null without one. */
  readonly status: number | null;
}

export interface DemoSummary {
  /** Whether the scenario started the cluster itself (no node answered at the URLs). */
  readonly startedCluster: boolean;
  readonly cutNode: string;
  readonly seed: number;
  readonly rate: number;
  readonly phasesMs: { readonly steady: number; readonly cut: number; readonly after: number };
  readonly sendingMs: number;
  readonly startedAt: string;
  readonly endedAt: string;
  /** POST /like sent = acknowledged (200, 201) + other (another status) + errors (no answer). */
  readonly likes: {
    readonly sent: number;
    readonly acknowledged: number;
    /** Distinct (post, user) pairs among the acknowledged: what the read-back checks. */
    readonly distinct: number;
    readonly other: number;
    readonly errors: number;
  };
  readonly reads: number;
  readonly nodes: readonly {
    readonly name: string;
    readonly url: string;
    readonly adminUrl: string;
    /** Likes this node acknowledged to the scenario. */
    readonly acknowledged: number;
    /** Growth of its likes_accepted_total over the run (null: its /metrics never answered). */
    readonly acceptedDuringRun: { readonly new: number; readonly duplicate: number } | null;
    readonly setSize: number | null;
    /** Acknowledged likes it did not hold at the read-back. */
    readonly missing: number;
  }[];
  /** likes_replication_pending at the step where its sum over every link was highest. */
  readonly maxPending: {
    readonly total: number;
    readonly byLink: Readonly<Record<string, number>>;
    readonly byPhase: Readonly<Record<Phase, number>>;
  };
  readonly maxSetSizeSpread: number;
  /** The most (node, peer) links that likes_peer_up showed down at one step. */
  readonly maxLinksDown: number;
  /** p99 of likes_replication_lag_seconds over every receiver, per phase, in ms. */
  readonly lagP99Ms: Readonly<Record<Phase, number | null>>;
  /** p99 of likes_convergence_seconds over every origin, per phase, in ms. */
  readonly convergenceP99Ms: Readonly<Record<Phase, number | null>>;
  /** Every node held what any node held at the heal, within the deadline. */
  readonly converged: boolean;
  /** From the heal until then, ms. */
  readonly convergeMs: number | null;
  /** Every version vector equal and nothing pending after the load stopped, by the deadline. */
  readonly settled: boolean;
  readonly settleMs: number | null;
  readonly readBack: { readonly checked: number; readonly lost: number };
  /** Acknowledged likes missing from at least one node. */
  readonly lost: number;
  readonly traces: readonly TracedLike[];
  /** The load generator's own summary of the run (latency, statuses, reads). */
  readonly load: Summary;
  readonly where: {
    readonly convergence: string;
    readonly service: string;
    readonly prometheus: string;
    readonly traces: readonly string[];
    readonly jaegerSearch: string;
  };
}

/** Whether the stack's UIs answered from here, by name. */
export type Reachable = Readonly<Record<"grafana" | "jaeger" | "prometheus", boolean>>;

const seconds = (ms: number | null): string => (ms === null ? "-" : `${(ms / 1000).toFixed(2)}s`);
const lag = (ms: number | null): string =>
  ms === null ? "-" : ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(1)}s`;

export function demoSummaryText(s: DemoSummary, reachable: Reachable): string {
  const links = Object.entries(s.maxPending.byLink)
    .filter(([, n]) => n > 0)
    .sort(([, a], [, b]) => b - a)
    .map(([link, n]) => `${link} ${n}`)
    .join(", ");
  const accepted = s.nodes.map((n) =>
    n.acceptedDuringRun ? n.acceptedDuringRun.new + n.acceptedDuringRun.duplicate : "?",
  );
  const down = (ok: boolean) =>
    ok ? "" : "   (not answering here: start the stack, docs/observability.md)";
  const lines = [
    "",
    `── likes demo: ${s.nodes.length} nodes${s.startedCluster ? " (started by the demo)" : ""}, ${s.cutNode} cut off ${s.phasesMs.cut / 1000}s, ${s.rate}/s, seed ${s.seed}`,
    `  likes sent        ${s.likes.sent}   acknowledged ${s.likes.acknowledged} (${s.likes.distinct} distinct)   other ${s.likes.other}   errors ${s.likes.errors}   (+ ${s.reads} reads)`,
    `  per node          ${s.nodes.map((n) => `${n.name} acked ${n.acknowledged}`).join(", ")}`,
    `  accepted (nodes)  ${s.nodes.map((n, i) => `${n.name} +${accepted[i]}`).join(", ")}   (likes_accepted_total over the run)`,
    `  max pending       ${s.maxPending.total}${links ? ` (${links})` : ""}`,
    `  max set spread    ${s.maxSetSizeSpread} likes between nodes; links down at most ${s.maxLinksDown}`,
    `  lag p99           steady ${lag(s.lagP99Ms.steady)}, cut ${lag(s.lagP99Ms.cut)}, after the heal ${lag(s.lagP99Ms.heal)}`,
    `  convergence p99   steady ${lag(s.convergenceP99Ms.steady)}, cut ${lag(s.convergenceP99Ms.cut)}, after the heal ${lag(s.convergenceP99Ms.heal)}   (likes_convergence_seconds)`,
    `  converged         ${s.converged ? `yes, ${seconds(s.convergeMs)} after the heal` : "NO, not by the deadline"}   (every node holds what any held at the heal)`,
    `  settled           ${s.settled ? `yes, vectors equal and nothing pending ${seconds(s.settleMs)} after the load stopped` : "NO, vectors differ or entries pending"}`,
    `  lost              ${s.lost}   (${s.readBack.checked} reads of ${s.likes.distinct} acknowledged likes × ${s.nodes.length} nodes${s.lost > 0 ? `; missing ${s.nodes.map((n) => `${n.name} ${n.missing}`).join(", ")}` : ""})`,
    `  latency           p50 ${s.load.latencyMs.p50 ?? "-"}ms  p99 ${s.load.latencyMs.p99 ?? "-"}ms  max ${s.load.latencyMs.max ?? "-"}ms`,
    "",
    "Where to look:",
    `  Grafana    ${s.where.convergence}${down(reachable.grafana)}`,
    `             ${s.where.service}`,
    `  Prometheus ${s.where.prometheus}${down(reachable.prometheus)}`,
    ...s.traces.map(
      (t, i) =>
        `  ${i === 0 ? "Jaeger    " : "          "} ${s.where.traces[i] ?? ""}   (${t.node}, ${t.phase})${i === 0 ? down(reachable.jaeger) : ""}`,
    ),
    ...s.nodes.map((n) => `  ${n.name.padEnd(10)} ${n.url}   admin ${n.adminUrl}/cluster`),
    "",
    s.lost === 0 && s.converged && s.settled
      ? "OK: converged, lost = 0"
      : `FAILED: ${[s.lost > 0 ? `lost = ${s.lost}` : "", s.converged ? "" : "no convergence after the heal", s.settled ? "" : "vectors not equal after the load"].filter(Boolean).join(", ")}`,
  ];
  return lines.join("\n") + "\n";
}
