// The pure parts of the load generator (src/load): Zipf sampler, open-loop schedule and its
// in-flight cap, latency percentiles, workload and options. The CLI against real nodes is in
// test/integration/load.test.ts.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LatencyHistogram, LatencyWindow } from "../../src/load/latency.js";
import { HELP, UsageError, parseDuration, parseOptions } from "../../src/load/options.js";
import { markOf, progressLine } from "../../src/load/report.js";
import { LoadRun, OpenLoopSchedule } from "../../src/load/schedule.js";
import { LoadStats, summarize } from "../../src/load/stats.js";
import { ABANDONED, Workload, type LoadRequest, type Outcome } from "../../src/load/workload.js";
import { ZipfSampler, seededRandom } from "../../src/load/zipf.js";

describe("Zipf sampler", () => {
  it("yields only ranks from 1 to n", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.double({ min: 0, max: 4, noNaN: true }),
        fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), {
          minLength: 1,
          maxLength: 50,
        }),
        (n, s, us) => {
          const zipf = new ZipfSampler(n, s);
          for (const u of [...us, 0, 1 - Number.EPSILON]) {
            const k = zipf.rank(u);
            expect(Number.isInteger(k)).toBe(true);
            expect(k).toBeGreaterThanOrEqual(1);
            expect(k).toBeLessThanOrEqual(n);
          }
        },
      ),
    );
  });

  it("draws rank 1 most often on a large sample, at about its probability", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 300 }),
        fc.double({ min: 0.5, max: 3, noNaN: true }),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        (n, s, seed) => {
          const zipf = new ZipfSampler(n, s);
          const random = seededRandom(seed);
          const draws = 50_000;
          const counts = new Array<number>(n + 1).fill(0);
          for (let i = 0; i < draws; i++) {
            const k = zipf.rank(random());
            counts[k] = (counts[k] ?? 0) + 1;
          }
          const first = counts[1] ?? 0;
          for (let k = 2; k <= n; k++) expect(first).toBeGreaterThan(counts[k] ?? 0);
          expect(Math.abs(first / draws - zipf.probability(1))).toBeLessThan(0.02);
        },
      ),
      { numRuns: 30 },
    );
  });

  it("is uniform with exponent 0, and refuses an empty range", () => {
    const zipf = new ZipfSampler(4, 0);
    expect([1, 2, 3, 4].map((k) => zipf.probability(k))).toEqual([0.25, 0.25, 0.25, 0.25]);
    expect([0, 0.24, 0.25, 0.5, 0.99].map((u) => zipf.rank(u))).toEqual([1, 1, 2, 3, 4]);
    expect(() => new ZipfSampler(0, 1)).toThrow(RangeError);
  });
});

describe("open-loop schedule", () => {
  it("issues floor(rate × duration) sends however the clock is ticked, never ahead of time", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.1, max: 5000, noNaN: true }),
        fc.integer({ min: 1, max: 60_000 }),
        fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 200 }),
        (rate, durationMs, steps) => {
          const schedule = new OpenLoopSchedule(rate, durationMs);
          let t = 0;
          let issued = 0;
          for (const step of steps) {
            t += step;
            issued += schedule.due(t);
            expect(issued).toBe(Math.floor((Math.min(t, durationMs) * rate) / 1000));
          }
          issued += schedule.due(durationMs + 5000);
          expect(issued).toBe(Math.floor((durationMs * rate) / 1000));
          expect(schedule.due(durationMs + 10_000)).toBe(0);
          expect(schedule.finished(durationMs)).toBe(true);
          expect(schedule.finished(durationMs - 1)).toBe(false);
        },
      ),
    );
  });

  it("runs until stopped without a duration", () => {
    const schedule = new OpenLoopSchedule(200, undefined);
    expect(schedule.due(3_600_000)).toBe(720_000);
    expect(schedule.finished(Number.MAX_SAFE_INTEGER)).toBe(false);
  });
});

/** A run on a virtual clock whose sends answer only when the test says so. */
function virtualRun(rate: number, durationMs: number | undefined, maxInFlight: number) {
  let now = 0;
  const waiting: ((o: Outcome) => void)[] = [];
  const stats = new LoadStats();
  const workload = new Workload(
    { posts: 10, zipfExponent: 1.1, users: 10, readShare: 0, targets: 1 },
    seededRandom(1),
  );
  const run = new LoadRun({
    schedule: new OpenLoopSchedule(rate, durationMs),
    maxInFlight,
    next: () => workload.next(),
    send: (_: LoadRequest) => new Promise<Outcome>((resolve) => waiting.push(resolve)),
    clock: { now: () => now },
    stats,
  });
  run.start();
  return {
    run,
    stats,
    advance(ms: number) {
      now += ms;
      return run.tick();
    },
    answer(n: number, outcome: Outcome) {
      for (const resolve of waiting.splice(0, n)) resolve(outcome);
    },
  };
}

describe("a load run", () => {
  it("keeps the offered rate when nothing answers, dropping what is over the in-flight cap", () => {
    const v = virtualRun(100, 10_000, 10);
    for (let i = 0; i < 100; i++) v.advance(10);
    expect(v.stats.offered).toBe(100);
    expect(v.stats.sent).toBe(10);
    expect(v.stats.dropped).toBe(90);
    expect(v.run.inFlight).toBe(10);
  });

  it("sends again once answers free the cap, counts 201 as new and 200 as repeat", async () => {
    const v = virtualRun(100, 10_000, 10);
    v.advance(100);
    expect(v.stats.sent).toBe(10);
    v.answer(6, { status: 201 });
    v.answer(3, { status: 200 });
    v.answer(1, { error: "timeout" });
    await v.run.idle();
    expect(v.stats.likesNew).toBe(6);
    expect(v.stats.likesRepeat).toBe(3);
    expect(v.stats.errors.get("timeout")).toBe(1);
    v.advance(50);
    expect([v.stats.offered, v.stats.sent, v.stats.dropped]).toEqual([15, 15, 0]);
  });

  it("stops at the end of its duration or when stopped, and waits for answers in flight", async () => {
    const v = virtualRun(50, 1000, 1000);
    expect(v.advance(999)).toBe(true);
    expect(v.advance(1)).toBe(false);
    expect(v.stats.offered).toBe(50);
    expect(v.advance(1000)).toBe(false);
    expect(v.stats.offered).toBe(50);
    let idle = false;
    void v.run.idle().then(() => (idle = true));
    v.answer(49, { status: 201 });
    await Promise.resolve();
    await Promise.resolve();
    expect(idle).toBe(false);
    v.answer(1, { status: 201 });
    await v.run.idle();
    expect(v.stats.answered).toBe(50);

    const forever = virtualRun(10, undefined, 100);
    forever.advance(5000);
    forever.run.stop();
    expect(forever.advance(5000)).toBe(false);
    expect(forever.stats.offered).toBe(50);
    expect(forever.run.sendingMs).toBe(5000);
  });

  it("summarizes what it counted", () => {
    const stats = new LoadStats();
    const like: LoadRequest = { kind: "like", method: "POST", path: "/like", target: 0 };
    const read: LoadRequest = { kind: "counts", method: "GET", path: "/counts", target: 0 };
    stats.offered = stats.sent = 4;
    stats.record(like, { status: 201 }, 2, 0);
    stats.record(like, { status: 200 }, 4, 0);
    stats.record(read, { status: 200 }, 6, 0);
    stats.record(like, { error: "ECONNRESET" }, 1, 0);
    const s = summarize(stats, { urls: ["u"], rate: 2, seed: 7, sendingMs: 2000 });
    expect(s.likes).toEqual({ new: 1, repeat: 1, other: 0 });
    expect(s.reads.total).toBe(1);
    expect(s.reads.counts).toBe(1);
    expect(s.status).toEqual({ "200": 2, "201": 1 });
    expect(s.errors).toEqual({ total: 1, kinds: { ECONNRESET: 1 } });
    expect(s.achievedRate).toBe(1.5);
    expect(s.latencyMs.max).toBe(6);
  });
});

describe("the end of a run", () => {
  it("counts a request given up on (a second Ctrl-C) once: unanswered, not an error", async () => {
    const v = virtualRun(100, undefined, 100);
    v.advance(100);
    expect(v.stats.sent).toBe(10);
    v.answer(4, { status: 201 });
    v.answer(1, { error: "timeout" });
    // What HttpTargets.abortAll makes of the 5 still in flight.
    v.answer(5, { error: ABANDONED });
    await v.run.idle();
    const s = summarize(v.stats, { urls: ["u"], rate: 100, seed: 1, sendingMs: 100 });
    expect(s.answered).toBe(4);
    expect(s.errors).toEqual({ total: 1, kinds: { timeout: 1 } });
    expect(s.unanswered).toBe(5);
    expect(s.answered + s.errors.total + s.unanswered).toBe(s.sent);
  });

  it("gives the last progress line's rates over the sending time, as the summary does", async () => {
    const v = virtualRun(20, 2000, 100);
    const first = markOf(v.stats, 0);
    for (let t = 0; t < 2000; t += 100) v.advance(100);
    expect(v.run.stopped).toBe(true);
    expect(v.stats.offered).toBe(40);
    v.answer(40, { status: 201 });
    await v.run.idle();
    // The answers came in 1.5 s after the last send: 3.5 s since the start.
    const line = progressLine(v.stats, first, markOf(v.stats, 3500), 3500, 0, v.run.sendingMs);
    const s = summarize(v.stats, { urls: ["u"], rate: 20, seed: 1, sendingMs: v.run.sendingMs });
    expect(line).toMatch(/^3\.5s offered 20\/s achieved 20\/s /);
    expect(s.achievedRate).toBe(20);
  });
});

describe("latency percentiles", () => {
  it("are within 2% of the exact quantile, and never above the max", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.02, max: 100_000, noNaN: true }), {
          minLength: 1,
          maxLength: 500,
        }),
        fc.constantFrom(0.5, 0.9, 0.99, 0.999, 1),
        (samples, q) => {
          const h = new LatencyHistogram();
          for (const x of samples) h.record(x);
          const sorted = [...samples].sort((a, b) => a - b);
          const exact = sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] as number;
          const got = h.quantile(q) as number;
          expect(Math.abs(got - exact) / exact).toBeLessThanOrEqual(0.0201);
          expect(got).toBeLessThanOrEqual(Math.max(...samples));
        },
      ),
    );
    expect(new LatencyHistogram().quantile(0.5)).toBeUndefined();
  });

  it("over a window forget what is older than the window", () => {
    const w = new LatencyWindow(5, 1000);
    w.record(0, 100);
    w.record(4500, 1);
    expect(w.snapshot(4999).count).toBe(2);
    expect(w.snapshot(4999).quantile(1)).toBe(100);
    expect(w.snapshot(5000).count).toBe(1);
    w.record(10_200, 3);
    // Slot 10 reuses the ring cell of slot 0 and 5: only the new sample is in it.
    expect(w.snapshot(10_300).count).toBe(1);
    expect(w.snapshot(20_000).count).toBe(0);
  });
});

describe("workload", () => {
  it("posts valid likes on post-1..n by user-1..m, in turn over the targets, with the read share", () => {
    const w = new Workload(
      { posts: 50, zipfExponent: 1.1, users: 20, readShare: 0.3, targets: 3 },
      seededRandom(42),
    );
    const requests = Array.from({ length: 3000 }, () => w.next());
    expect(requests.slice(0, 6).map((r) => r.target)).toEqual([0, 1, 2, 0, 1, 2]);
    const likes = requests.filter((r) => r.kind === "like");
    for (const r of likes) {
      const body = JSON.parse(r.body ?? "") as { post: string; user: string };
      expect(body.post).toMatch(/^post-([1-9]|[1-4]\d|50)$/);
      expect(body.user).toMatch(/^user-([1-9]|1\d|20)$/);
    }
    const reads = requests.length - likes.length;
    expect(reads / requests.length).toBeGreaterThan(0.25);
    expect(reads / requests.length).toBeLessThan(0.35);
    const kinds = new Set(requests.map((r) => r.kind));
    expect([...kinds].sort()).toEqual(["count", "counts", "detail", "like", "liked"]);
    const counts = requests.find((r) => r.kind === "counts");
    expect(counts?.path.match(/post=/g)).toHaveLength(10);
  });
});

describe("load options", () => {
  it("defaults to the make dev nodes at 100/s for 30 s", () => {
    const o = parseOptions([]);
    expect(o.urls).toEqual([
      "http://127.0.0.1:8080",
      "http://127.0.0.1:8081",
      "http://127.0.0.1:8082",
    ]);
    expect([o.rate, o.durationMs, o.posts, o.zipfExponent, o.users, o.readShare]).toEqual([
      100, 30_000, 1000, 1.1, 10_000, 0.2,
    ]);
    expect(parseOptions(["--nodes", "5"]).urls).toHaveLength(5);
    expect(parseOptions(["--url", "http://a:1/,http://b:2", "--url", "https://c/x/"]).urls).toEqual(
      ["http://a:1", "http://b:2", "https://c/x"],
    );
    expect(parseOptions(["--duration", "0"]).durationMs).toBeUndefined();
  });

  it.each([
    [["--rate", "0"], "--rate: 0 is out of range"],
    [["--rate", "fast"], '--rate: "fast" is not a number'],
    [["--rate", ""], '--rate: "" is not a number'],
    [["--duration", "30"], '--duration: "30" is not a duration'],
    [["--posts", "1.5"], '--posts: "1.5" is not an integer'],
    [["--reads", "2"], "--reads: 2 is out of range"],
    [["--url", "ftp://x"], "is not an http:// or https:// URL"],
    [["--timeout", "0"], "--timeout: must be more than 0"],
    [["--rates", "5"], "Unknown option '--rates'"],
    // Over 2^31-1 ms Node's timers fire after 1 ms: every request would time out at once.
    [["--timeout", "600h"], "--timeout: 600h is more than 1h"],
    [["--timeout", "2h"], "--timeout: 2h is more than 1h"],
    [["--probe-timeout", "600h"], "--probe-timeout: 600h is more than 1h"],
    [["--duration", "25h"], "--duration: 25h is more than 24h"],
    [["--duration", "100000h"], "--duration: 100000h is more than 24h"],
    [["--progress", "0.01ms"], "--progress: 0.01ms is less than 100ms"],
    [["--progress", "50ms"], "--progress: 50ms is less than 100ms"],
    [["--progress", "600h"], "--progress: 600h is more than 1h"],
    [["--url", ""], "--url: no URL given"],
    [["--url", " , "], "--url: no URL given"],
    [["--rate", "0x14"], '--rate: "0x14" is not a number'],
    [["--rate", "1e3"], '--rate: "1e3" is not a number'],
    [["--posts", "0b11"], '--posts: "0b11" is not an integer'],
    [["--seed", "0o7"], '--seed: "0o7" is not an integer'],
  ])("refuses %j with a message naming the option", (argv, message) => {
    expect(() => parseOptions(argv)).toThrow(UsageError);
    expect(() => parseOptions(argv)).toThrow(message);
  });

  it("documents every option it accepts in --help and the README, and accepts every one documented", () => {
    const documented = [...HELP.matchAll(/^ {2}(?:-h, )?--([a-z-]+)/gm)].map((m) => m[1] ?? "");
    expect(documented.length).toBeGreaterThan(10);
    const readme = readFileSync(fileURLToPath(new URL("../../README.md", import.meta.url)), "utf8");
    const section = readme.slice(readme.indexOf("## Load"), readme.indexOf("## Performance"));
    for (const name of documented) {
      const value = name === "url" ? "http://x" : name === "json" || name === "help" ? [] : "1s";
      const args = [`--${name}`, ...(Array.isArray(value) ? value : [value])];
      // Accepted: an error may be about the value, never an unknown option.
      try {
        parseOptions(args);
      } catch (error) {
        expect(String(error)).not.toContain("Unknown option");
      }
      if (name !== "help")
        expect(section, `README Load names --${name}`).toContain(`\`--${name}\``);
    }
    expect(() => parseOptions(["--no-such-option"])).toThrow("Unknown option");
  });

  it("accepts durations up to their bounds, and 0 to turn progress lines off", () => {
    const o = parseOptions([
      "--duration=24h",
      "--timeout=1h",
      "--probe-timeout=1h",
      "--progress=100ms",
    ]);
    expect([o.durationMs, o.timeoutMs, o.probeTimeoutMs, o.progressMs]).toEqual([
      86_400_000, 3_600_000, 3_600_000, 100,
    ]);
    expect(parseOptions(["--progress=1h"]).progressMs).toBe(3_600_000);
    expect(parseOptions(["--progress=0"]).progressMs).toBe(0);
    expect(parseOptions(["--progress=0s"]).progressMs).toBe(0);
    expect(parseOptions(["--rate=20", "--reads=.5", "--seed=7"])).toMatchObject({
      rate: 20,
      readShare: 0.5,
      seed: 7,
    });
    expect(parseOptions(["--rate=2.5"]).rate).toBe(2.5);
  });

  it("reads durations in ms, s, m and h", () => {
    expect(["500ms", "1.5s", "2m", "1h", "0"].map((d) => parseDuration("x", d))).toEqual([
      500, 1500, 120_000, 3_600_000, 0,
    ]);
  });
});
