// What a person reads: the progress line (redrawn in place on a terminal, a plain line every
// few seconds elsewhere) and the final summary.
import type { LoadStats, Summary } from "./stats.js";

/** The counters the progress line diffs between two redraws. */
export interface ProgressMark {
  readonly atMs: number;
  readonly offered: number;
  readonly answered: number;
}

export function markOf(stats: LoadStats, atMs: number): ProgressMark {
  return { atMs, offered: stats.offered, answered: stats.answered };
}

const ms = (x: number | undefined | null): string =>
  x === undefined || x === null ? "-" : x < 10 ? `${x.toFixed(1)}ms` : `${Math.round(x)}ms`;

/**
 * One line: elapsed, offered and achieved rate since the previous mark, answers by class,
 * errors, dropped sends, requests in flight, and p50/p99 of the last window. The rates are over
 * `overMs`, the time between the marks unless told: the last line of a run, from its first mark,
 * gives them over the sending time, as the summary does (not over the wait for answers after).
 */
export function progressLine(
  stats: LoadStats,
  previous: ProgressMark,
  now: ProgressMark,
  elapsedMs: number,
  inFlight: number,
  overMs = now.atMs - previous.atMs,
): string {
  const seconds = overMs / 1000;
  const perSecond = (a: number, b: number) => (seconds > 0 ? Math.round((a - b) / seconds) : 0);
  const recent = stats.recent.snapshot(now.atMs);
  return [
    `${(elapsedMs / 1000).toFixed(1)}s`,
    `offered ${perSecond(now.offered, previous.offered)}/s`,
    `achieved ${perSecond(now.answered, previous.answered)}/s`,
    `| 2xx ${stats.statusClass(200)} 4xx ${stats.statusClass(400)} 5xx ${stats.statusClass(500)}`,
    `err ${stats.errorCount} dropped ${stats.dropped} | in flight ${inFlight}`,
    `| p50 ${ms(recent.quantile(0.5))} p99 ${ms(recent.quantile(0.99))} (last ${stats.recent.spanMs / 1000}s)`,
  ].join(" ");
}

/** "timeout 12, ECONNREFUSED 3", or "none". */
export const count = (record: Readonly<Record<string, number>>): string =>
  Object.entries(record)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ") || "none";

export function summaryText(s: Summary): string {
  const lines = [
    `load: ${s.durationSeconds.toFixed(1)}s at ${s.rate}/s against ${s.urls.join(" ")} (seed ${s.seed})`,
    `  offered   ${s.offered}   sent ${s.sent}   dropped (client saturated) ${s.dropped}`,
    `  answered  ${s.answered} (${s.achievedRate}/s)   errors ${s.errors.total}${s.errors.total > 0 ? ` (${count(s.errors.kinds)})` : ""}   unanswered ${s.unanswered}`,
    `  likes     201 new ${s.likes.new}   200 repeat ${s.likes.repeat}   other ${s.likes.other}`,
    `  reads     ${s.reads.total} (count ${s.reads.count}, detail ${s.reads.detail}, counts ${s.reads.counts}, liked ${s.reads.liked})`,
    `  status    ${count(s.status)}`,
    `  latency   p50 ${ms(s.latencyMs.p50)}  p90 ${ms(s.latencyMs.p90)}  p99 ${ms(s.latencyMs.p99)}  p99.9 ${ms(s.latencyMs.p999)}  max ${ms(s.latencyMs.max)}`,
  ];
  return lines.join("\n") + "\n";
}
