// A clock for unit tests that moves only when the test says, with timers that fire as it
// passes them (or, with fire(), as early as the test says).
import type { Clock, Timer } from "../../src/replication/ports.js";

/** A clock whose timers run when the test says, as late or as early as it says. */
export class ManualClock implements Clock {
  time = 1_000_000;
  readonly timers: { at: number; run: () => void; cancelled: boolean }[] = [];
  now(): number {
    return this.time;
  }
  setTimeout(run: () => void, ms: number): Timer {
    const timer = { at: this.time + ms, run, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  }
  /** Moves the clock `ms` on, firing the timers due by then. */
  advance(ms: number): void {
    this.time += ms;
    for (const timer of this.timers.filter((t) => t.at <= this.time)) {
      this.timers.splice(this.timers.indexOf(timer), 1);
      if (!timer.cancelled) timer.run();
    }
  }
  /** Fires the pending timers, the clock set `earlyMs` before each one's time. */
  fire(earlyMs = 0): void {
    for (const timer of this.timers.splice(0)) {
      if (timer.cancelled) continue;
      this.time = timer.at - earlyMs;
      timer.run();
    }
  }
}
