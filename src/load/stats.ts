// The counts of a run and the summary made of them: what the progress line and the final
// report (text or JSON) show.
import { LatencyHistogram, LatencyWindow } from "./latency.js";
import {
  ABANDONED,
  READ_KINDS,
  type LoadRequest,
  type Outcome,
  type ReadKind,
} from "./workload.js";

export class LoadStats {
  /** Sends that fell due by the schedule: sent + dropped. */
  offered = 0;
  sent = 0;
  /** Due while `maxInFlight` answers were outstanding: never sent (client saturated). */
  dropped = 0;
  /** Requests that got an HTTP answer, whatever its status. */
  answered = 0;
  /** Requests given up on while in flight (ABANDONED): neither answered nor an error. */
  unanswered = 0;
  likesNew = 0;
  likesRepeat = 0;
  likesOther = 0;
  readonly reads: Record<ReadKind, number> = { count: 0, detail: 0, counts: 0, liked: 0 };
  readonly status = new Map<number, number>();
  readonly errors = new Map<string, number>();
  /** Latency of every answer (errors excluded). */
  readonly latency = new LatencyHistogram();
  readonly recent: LatencyWindow;

  constructor(windowSeconds = 5) {
    this.recent = new LatencyWindow(windowSeconds, 1000);
  }

  record(request: LoadRequest, outcome: Outcome, latencyMs: number, nowMs: number): void {
    if ("error" in outcome) {
      if (outcome.error === ABANDONED) {
        this.unanswered++;
        return;
      }
      this.errors.set(outcome.error, (this.errors.get(outcome.error) ?? 0) + 1);
      return;
    }
    const { status } = outcome;
    this.answered++;
    this.status.set(status, (this.status.get(status) ?? 0) + 1);
    this.latency.record(latencyMs);
    this.recent.record(nowMs, latencyMs);
    if (request.kind === "like") {
      if (status === 201) this.likesNew++;
      else if (status === 200) this.likesRepeat++;
      else this.likesOther++;
    } else this.reads[request.kind]++;
  }

  get errorCount(): number {
    let n = 0;
    for (const c of this.errors.values()) n += c;
    return n;
  }

  /** Answers with a status in [from, from + 100). */
  statusClass(from: number): number {
    let n = 0;
    for (const [status, c] of this.status) if (status >= from && status < from + 100) n += c;
    return n;
  }
}

export interface Summary {
  readonly urls: readonly string[];
  readonly rate: number;
  readonly seed: number;
  /** Seconds spent sending (the duration, or until Ctrl-C). */
  readonly durationSeconds: number;
  readonly offered: number;
  readonly sent: number;
  readonly dropped: number;
  readonly answered: number;
  /** Answers a second over the sending time. */
  readonly achievedRate: number;
  readonly likes: { readonly new: number; readonly repeat: number; readonly other: number };
  readonly reads: Readonly<Record<ReadKind, number>> & { readonly total: number };
  readonly status: Readonly<Record<string, number>>;
  /** Requests that got no answer, by cause (timeout, ECONNREFUSED, …). */
  readonly errors: { readonly total: number; readonly kinds: Readonly<Record<string, number>> };
  /**
   * Still in flight when the run gave up waiting (Ctrl-C once sending had stopped): outcome
   * unknown. answered + errors.total + unanswered = sent.
   */
  readonly unanswered: number;
  readonly latencyMs: {
    readonly p50: number | null;
    readonly p90: number | null;
    readonly p99: number | null;
    readonly p999: number | null;
    readonly max: number | null;
  };
}

const round = (x: number | undefined, digits = 2): number | null =>
  x === undefined ? null : Number(x.toFixed(digits));

export function summarize(
  stats: LoadStats,
  run: {
    urls: readonly string[];
    rate: number;
    seed: number;
    sendingMs: number;
  },
): Summary {
  const seconds = run.sendingMs / 1000;
  const reads = READ_KINDS.reduce((n, kind) => n + stats.reads[kind], 0);
  const h = stats.latency;
  return {
    urls: run.urls,
    rate: run.rate,
    seed: run.seed,
    durationSeconds: round(seconds, 3) ?? 0,
    offered: stats.offered,
    sent: stats.sent,
    dropped: stats.dropped,
    answered: stats.answered,
    achievedRate: seconds > 0 ? (round(stats.answered / seconds, 1) ?? 0) : 0,
    likes: { new: stats.likesNew, repeat: stats.likesRepeat, other: stats.likesOther },
    reads: { ...stats.reads, total: reads },
    status: Object.fromEntries(
      [...stats.status].sort(([a], [b]) => a - b).map(([s, n]) => [String(s), n]),
    ),
    errors: {
      total: stats.errorCount,
      kinds: Object.fromEntries([...stats.errors].sort(([a], [b]) => a.localeCompare(b))),
    },
    unanswered: stats.unanswered,
    latencyMs: {
      p50: round(h.quantile(0.5)),
      p90: round(h.quantile(0.9)),
      p99: round(h.quantile(0.99)),
      p999: round(h.quantile(0.999)),
      max: h.count > 0 ? round(h.max) : null,
    },
  };
}
