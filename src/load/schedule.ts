// Open loop: sends are due by the clock alone. A slow cluster does not slow the offered load;
// when too many answers are outstanding the sends that fall due are dropped and counted, never
// queued behind the answers (a queue would turn the open loop back into a closed one).
import type { LoadRequest, Outcome } from "./workload.js";
import type { LoadStats } from "./stats.js";

/** A monotonic clock in milliseconds (performance.now in the CLI, a variable in tests). */
export interface Clock {
  now(): number;
}

/** How many sends are due at a time since the start, at `rate` a second for `durationMs`. */
export class OpenLoopSchedule {
  private issued = 0;

  constructor(
    readonly rate: number,
    /** undefined: until stopped. */
    readonly durationMs: number | undefined,
  ) {}

  /** The sends due between the previous call and `elapsedMs`: floor(rate × t) in all. */
  due(elapsedMs: number): number {
    const t = this.durationMs === undefined ? elapsedMs : Math.min(elapsedMs, this.durationMs);
    const total = Math.floor((Math.max(0, t) * this.rate) / 1000);
    const n = Math.max(0, total - this.issued);
    this.issued += n;
    return n;
  }

  finished(elapsedMs: number): boolean {
    return this.durationMs !== undefined && elapsedMs >= this.durationMs;
  }

  get total(): number {
    return this.issued;
  }
}

export interface LoadRunParts {
  readonly schedule: OpenLoopSchedule;
  /** At most this many requests in flight; a send due beyond it is dropped. */
  readonly maxInFlight: number;
  readonly next: () => LoadRequest;
  /** Never rejects: a failure is an Outcome with an error. */
  readonly send: (request: LoadRequest) => Promise<Outcome>;
  readonly clock: Clock;
  readonly stats: LoadStats;
}

/** One run: `tick()` (from a timer) issues what is due; `stop()` ends the schedule early. */
export class LoadRun {
  private startMs: number | undefined;
  private stopMs: number | undefined;
  private inFlightCount = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly parts: LoadRunParts) {}

  start(): void {
    this.startMs = this.parts.clock.now();
  }

  /** Issues every send due by now; false once the schedule is over (duration or stop). */
  tick(): boolean {
    if (this.startMs === undefined) throw new Error("tick before start");
    if (this.stopMs !== undefined) return false;
    const { schedule, stats, maxInFlight } = this.parts;
    const elapsed = this.parts.clock.now() - this.startMs;
    const due = schedule.due(elapsed);
    for (let i = 0; i < due; i++) {
      stats.offered++;
      if (this.inFlightCount >= maxInFlight) stats.dropped++;
      else this.dispatch(this.parts.next());
    }
    if (schedule.finished(elapsed)) this.stop();
    return this.stopMs === undefined;
  }

  stop(): void {
    if (this.startMs !== undefined && this.stopMs === undefined)
      this.stopMs = this.parts.clock.now();
  }

  get stopped(): boolean {
    return this.stopMs !== undefined;
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  /** Time spent sending: from start to stop (or now while running). */
  get sendingMs(): number {
    if (this.startMs === undefined) return 0;
    return (this.stopMs ?? this.parts.clock.now()) - this.startMs;
  }

  /** Resolves once nothing is in flight. */
  idle(): Promise<void> {
    if (this.inFlightCount === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private dispatch(request: LoadRequest): void {
    const { clock, stats } = this.parts;
    const sentAt = clock.now();
    this.inFlightCount++;
    stats.sent++;
    void this.parts
      .send(request)
      .catch((error: unknown): Outcome => ({ error: `internal: ${String(error)}` }))
      .then((outcome) => {
        const now = clock.now();
        stats.record(request, outcome, now - sentAt, now);
        this.inFlightCount--;
        if (this.inFlightCount === 0) for (const wake of this.idleWaiters.splice(0)) wake();
      });
  }
}
