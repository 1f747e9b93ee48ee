import type { Clock, Timer } from "../../src/replication/ports.js";

// The simulation draws from the same seeded generator as the load generator: a seed replays.
export { seededRandom } from "../../src/load/zipf.js";

interface Event {
  readonly time: number;
  readonly order: number;
  readonly run: () => void;
  cancelled: boolean;
}

/**
 * Virtual time. Events run in (time, insertion) order; after each one, every promise reaction it
 * caused settles before the next event, so a run depends on nothing but the seed.
 */
export class Scheduler implements Clock {
  private heap: Event[] = [];
  private order = 0;
  private time = 1_700_000_000_000;
  events = 0;

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): Timer {
    // Whole milliseconds, as a real clock reads.
    const event: Event = {
      time: this.time + Math.max(0, Math.ceil(ms)),
      order: this.order++,
      run: callback,
      cancelled: false,
    };
    this.push(event);
    return { cancel: () => (event.cancelled = true) };
  }

  /** Runs events until virtual time `until` (absolute). */
  async runUntil(until: number): Promise<void> {
    for (;;) {
      const next = this.heap[0];
      if (!next || next.time > until) break;
      this.pop();
      if (next.cancelled) continue;
      this.time = next.time;
      this.events++;
      next.run();
      // A macrotask boundary: all microtasks queued by the event (and their chains) run first.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.time = Math.max(this.time, until);
  }

  private push(event: Event): void {
    const heap = this.heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i] as Event, heap[parent] as Event)) break;
      [heap[i], heap[parent]] = [heap[parent] as Event, heap[i] as Event];
      i = parent;
    }
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop() as Event;
    if (heap.length === 0) return;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      if (l < heap.length && before(heap[l] as Event, heap[min] as Event)) min = l;
      if (r < heap.length && before(heap[r] as Event, heap[min] as Event)) min = r;
      if (min === i) break;
      [heap[i], heap[min]] = [heap[min] as Event, heap[i] as Event];
      i = min;
    }
  }
}

function before(a: Event, b: Event): boolean {
  return a.time < b.time || (a.time === b.time && a.order < b.order);
}
