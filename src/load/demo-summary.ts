// What a finished scenario adds up to: the summary's figures from its counters and step lines,
// and where to look for the run in the observability stack.
import type { AckedLikes } from "./acked-likes.js";
import type { DemoNode } from "./demo-nodes.js";
import type { DemoOptions } from "./demo-options.js";
import type { DemoSummary, TracedLike } from "./demo-report.js";
import type { StepRecorder } from "./demo-steps.js";

/** What the scenario knows once it is over. */
export interface ScenarioRecord {
  readonly options: DemoOptions;
  readonly nodes: readonly DemoNode[];
  readonly seed: number;
  readonly startedCluster: boolean;
  readonly cutNode: string;
  readonly acked: AckedLikes;
  readonly steps: StepRecorder;
  readonly startedAtEpochMs: number;
  readonly endedAtEpochMs: number;
  readonly convergeMs: number | null;
  readonly settleMs: number | null;
  readonly missing: { byNode: number[]; lost: number; checked: number };
  readonly traces: TracedLike[];
  readonly loadSummary: DemoSummary["load"];
  readonly sendingMs: number;
}

export function scenarioSummary(r: ScenarioRecord): DemoSummary {
  const { options, nodes, seed, startedCluster } = r;
  const round = (x: number | null) => (x === null ? null : Math.round(x));
  return {
    startedCluster,
    cutNode: r.cutNode,
    seed,
    rate: options.rate,
    phasesMs: { steady: options.steadyMs, cut: options.cutMs, after: options.afterMs },
    sendingMs: Math.round(r.sendingMs),
    startedAt: new Date(r.startedAtEpochMs).toISOString(),
    endedAt: new Date(r.endedAtEpochMs).toISOString(),
    likes: {
      sent: r.acked.sent,
      acknowledged: r.acked.acknowledged,
      distinct: r.acked.distinct,
      other: r.acked.other,
      errors: r.acked.errors,
    },
    reads: r.loadSummary.reads.total,
    nodes: nodes.map((n, i) => {
      const first = r.steps.first.get(n.name);
      const last = r.steps.last.get(n.name);
      return {
        name: n.name,
        url: n.url,
        adminUrl: n.adminUrl,
        acknowledged: r.acked.byTarget[i] ?? 0,
        acceptedDuringRun:
          first && last
            ? {
                new: last.accepted.new - first.accepted.new,
                duplicate: last.accepted.duplicate - first.accepted.duplicate,
              }
            : null,
        setSize: last?.setSize ?? null,
        missing: r.missing.byNode[i] ?? 0,
      };
    }),
    maxPending: {
      total: r.steps.maxPendingTotal,
      byLink: Object.fromEntries(r.steps.maxPendingByLink),
      byPhase: { ...r.steps.maxPendingByPhase },
    },
    maxSetSizeSpread: r.steps.maxSetSizeSpread,
    maxLinksDown: r.steps.maxLinksDown,
    lagP99Ms: r.steps.lagP99ByPhase(),
    convergenceP99Ms: r.steps.convergenceP99ByPhase(),
    converged: r.convergeMs !== null,
    convergeMs: round(r.convergeMs),
    settled: r.settleMs !== null,
    settleMs: round(r.settleMs),
    readBack: { checked: r.missing.checked, lost: r.missing.lost },
    lost: r.missing.lost,
    traces: r.traces,
    load: r.loadSummary,
    where: whereToLook(options, r.startedAtEpochMs, r.endedAtEpochMs, r.traces),
  };
}

function whereToLook(
  options: DemoOptions,
  fromMs: number,
  toMs: number,
  traces: readonly TracedLike[],
): DemoSummary["where"] {
  // A margin of a scrape interval or two each side, so the panels show the run whole.
  const range = `from=${fromMs - 30_000}&to=${toMs + 30_000}`;
  const pending = encodeURIComponent("sum by (node, peer) (likes_replication_pending)");
  return {
    convergence: `${options.grafana}/d/likes-convergence?${range}`,
    service: `${options.grafana}/d/likes-service?${range}`,
    prometheus: `${options.prometheus}/query?g0.expr=${pending}&g0.tab=graph&g0.range_input=5m`,
    traces: traces.map((t) => `${options.jaeger}/trace/${t.traceId}`),
    jaegerSearch: `${options.jaeger}/search?service=likes&operation=POST%20%2Flike`,
  };
}
