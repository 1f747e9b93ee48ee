// The scenario's once-a-second look at the nodes' /metrics: one line per step (set size per
// node, entries pending per link, replication lag p99 and entries applied by anti-entropy over
// the last step, links down, faults in force), and the extremes the summary reports.
import {
  histogramDelta,
  histogramQuantile,
  histogramSum,
  type Histogram,
  type NodeMetrics,
} from "./node-metrics.js";

export type Phase = "steady" | "cut" | "heal" | "drain";
export const PHASES: readonly Phase[] = ["steady", "cut", "heal", "drain"];

export interface StepNode {
  readonly name: string;
  /** undefined: its /metrics did not answer this step. */
  readonly metrics: NodeMetrics | undefined;
}

const ms = (seconds: number | undefined): string =>
  seconds === undefined
    ? "-"
    : seconds < 0.01
      ? `${(seconds * 1000).toFixed(1)}ms`
      : seconds < 1
        ? `${Math.round(seconds * 1000)}ms`
        : `${seconds.toFixed(1)}s`;

export class StepRecorder {
  private readonly previous = new Map<string, NodeMetrics>();
  private readonly lagByPhase = new Map<Phase, Histogram[]>();
  private readonly convergenceByPhase = new Map<Phase, Histogram[]>();
  /** The most entries pending at one step, over every link; and per link. */
  maxPendingTotal = 0;
  readonly maxPendingByLink = new Map<string, number>();
  readonly maxPendingByPhase: Record<Phase, number> = { steady: 0, cut: 0, heal: 0, drain: 0 };
  maxSetSizeSpread = 0;
  /** The most (node, peer) links seen down at one step. */
  maxLinksDown = 0;
  /** The first read of each node, for the growth of its counters over the run. */
  readonly first = new Map<string, NodeMetrics>();
  readonly last = new Map<string, NodeMetrics>();

  /** Records one step; returns its line. */
  record(
    elapsedMs: number,
    phase: Phase,
    acknowledged: number,
    nodes: readonly StepNode[],
  ): string {
    const sizes: string[] = [];
    const pending: string[] = [];
    const lags: Histogram[] = [];
    const convergences: Histogram[] = [];
    let pendingTotal = 0;
    let down = 0;
    let synced = 0;
    const faults: string[] = [];
    const setSizes: number[] = [];
    for (const { name, metrics } of nodes) {
      if (!metrics) {
        sizes.push(`${name} ?`);
        continue;
      }
      if (!this.first.has(name)) this.first.set(name, metrics);
      this.last.set(name, metrics);
      sizes.push(`${name} ${metrics.setSize}`);
      setSizes.push(metrics.setSize);
      for (const [peer, n] of metrics.pending) {
        pendingTotal += n;
        const link = `${name}→${peer}`;
        this.maxPendingByLink.set(link, Math.max(this.maxPendingByLink.get(link) ?? 0, n));
        if (n > 0) pending.push(`${link} ${n}`);
      }
      for (const up of metrics.up.values()) if (up === 0) down++;
      for (const f of metrics.faults) faults.push(`${name}→${f}`);
      const before = this.previous.get(name);
      // A node's first read holds everything since it started: only later steps count.
      if (before) {
        lags.push(histogramDelta(before.lag, metrics.lag));
        convergences.push(histogramDelta(before.convergence, metrics.convergence));
        synced += (metrics.applied.sync ?? 0) - (before.applied.sync ?? 0);
      }
      this.previous.set(name, metrics);
    }
    this.maxPendingTotal = Math.max(this.maxPendingTotal, pendingTotal);
    this.maxPendingByPhase[phase] = Math.max(this.maxPendingByPhase[phase], pendingTotal);
    this.maxLinksDown = Math.max(this.maxLinksDown, down);
    if (setSizes.length > 1)
      this.maxSetSizeSpread = Math.max(
        this.maxSetSizeSpread,
        Math.max(...setSizes) - Math.min(...setSizes),
      );
    const lag = histogramSum(lags);
    const convergence = histogramSum(convergences);
    for (const [byPhase, h] of [
      [this.lagByPhase, lag],
      [this.convergenceByPhase, convergence],
    ] as const)
      byPhase.set(phase, [...(byPhase.get(phase) ?? []), h]);
    return [
      `${(elapsedMs / 1000).toFixed(0).padStart(4)}s ${phase.padEnd(6)}`,
      `acked ${acknowledged}`,
      `| set ${sizes.join(" ")}`,
      `| pending ${pending.length ? pending.join(" ") : "0"}`,
      `| lag p99 ${ms(histogramQuantile(0.99, lag))} (${lag.count} applied, ${synced} by sync)`,
      `| convergence p99 ${ms(histogramQuantile(0.99, convergence))}`,
      `| links down ${down}`,
      ...(faults.length ? [`| fault ${[...new Set(faults)].join(" ")}`] : []),
    ].join(" ");
  }

  /** The p99 replication lag of each phase, in ms (what the dashboards' lag p99 panel shows). */
  lagP99ByPhase(): Record<Phase, number | null> {
    return p99ByPhase(this.lagByPhase);
  }

  /** The p99 of likes_convergence_seconds of each phase, in ms. */
  convergenceP99ByPhase(): Record<Phase, number | null> {
    return p99ByPhase(this.convergenceByPhase);
  }
}

function p99ByPhase(byPhase: ReadonlyMap<Phase, Histogram[]>): Record<Phase, number | null> {
  const result = {} as Record<Phase, number | null>;
  for (const phase of PHASES) {
    const q = histogramQuantile(0.99, histogramSum(byPhase.get(phase) ?? []));
    result[phase] = q === undefined ? null : Math.round(q * 1000 * 10) / 10;
  }
  return result;
}
