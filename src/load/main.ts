// The load generator's entry: `node dist/load/main.js [options]` (npm run load, make load, the
// chart's load Job). Wires the real clock, timers and HTTP to the pure parts of src/load.
import { randomInt } from "node:crypto";
import { performance } from "node:perf_hooks";
import { HttpTargets, probe } from "./client.js";
import { HELP, UsageError, parseOptions, type LoadOptions } from "./options.js";
import { count, markOf, progressLine, summaryText } from "./report.js";
import { LoadRun, OpenLoopSchedule, type Clock } from "./schedule.js";
import { LoadStats, summarize } from "./stats.js";
import { exitQuietlyWhenOutputCloses } from "./streams.js";
import { Workload } from "./workload.js";
import { seededRandom } from "./zipf.js";

/** How often the schedule is looked at: sends due in between go out together. */
const TICK_MS = 5;

function fail(message: string, code: number): never {
  process.stderr.write(`load: ${message}\n`);
  process.exit(code);
}

async function run(options: LoadOptions): Promise<void> {
  // With --json stdout carries the summary alone; everything a person reads goes to stderr.
  const out = options.json ? process.stderr : process.stdout;
  const say = (line: string) => out.write(line + "\n");

  const probes = await Promise.all(options.urls.map((u) => probe(u, options.probeTimeoutMs)));
  for (const p of probes)
    say(p.node ? `load: ${p.url} is ${p.node}` : `load: ${p.url} does not answer (${p.error})`);
  const urls = probes.filter((p) => p.node !== undefined).map((p) => p.url);
  if (urls.length === 0)
    fail(
      `no node answers GET / at ${options.urls.join(", ")}: is the cluster running (make dev)? --url to aim elsewhere`,
      1,
    );
  if (urls.length < probes.length) say(`load: sending to the ${urls.length} that answer`);

  const seed = options.seed ?? randomInt(2 ** 32);
  const clock: Clock = { now: () => performance.now() };
  const stats = new LoadStats();
  const targets = new HttpTargets(urls, options.timeoutMs, options.concurrency);
  const workload = new Workload(
    {
      posts: options.posts,
      zipfExponent: options.zipfExponent,
      users: options.users,
      readShare: options.readShare,
      targets: urls.length,
    },
    seededRandom(seed),
  );
  const loadRun = new LoadRun({
    schedule: new OpenLoopSchedule(options.rate, options.durationMs),
    maxInFlight: options.concurrency,
    next: () => workload.next(),
    send: (request) => targets.send(request),
    clock,
    stats,
  });

  const tty = out.isTTY === true;
  const progressMs = options.progressMs ?? (tty ? 1000 : 5000);
  const until =
    options.durationMs === undefined ? "until Ctrl-C" : `for ${options.durationMs / 1000}s`;
  say(
    `load: ${options.rate}/s ${until}, ${options.posts} posts (zipf ${options.zipfExponent}), ${options.users} users, ${Math.round(options.readShare * 100)}% reads, seed ${seed}`,
  );

  loadRun.start();
  const startedAt = clock.now();
  const first = markOf(stats, startedAt);
  let mark = first;
  /** `overMs`: what the rates are over (the time since `since` unless told). */
  const drawProgress = (since = mark, overMs?: number) => {
    const now = markOf(stats, clock.now());
    const line = progressLine(stats, since, now, now.atMs - startedAt, loadRun.inFlight, overMs);
    mark = now;
    // On a terminal the line is redrawn in place: carriage return, then clear to its end.
    out.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
  };
  const progressTimer = progressMs > 0 ? setInterval(() => drawProgress(), progressMs) : undefined;

  // While sending, Ctrl-C (or SIGTERM) stops it; once sending has stopped (by a signal or by
  // --duration), it stops waiting: the requests in flight end as unanswered.
  let interrupted = false;
  const onSignal = () => {
    if (loadRun.stopped) targets.abortAll();
    else loadRun.stop();
    interrupted = true;
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  await new Promise<void>((resolve) => {
    const ticker = setInterval(() => {
      if (!loadRun.tick()) {
        clearInterval(ticker);
        resolve();
      }
    }, TICK_MS);
    loadRun.tick();
  });
  if (loadRun.inFlight > 0) {
    if (tty && progressMs > 0) out.write("\n");
    say(
      `load: stopped sending; waiting up to ${options.timeoutMs / 1000}s for ${loadRun.inFlight} answers in flight (${interrupted ? "Ctrl-C again" : "Ctrl-C"}: stop waiting)`,
    );
  }
  // Every request ends by its own deadline (--timeout), so this wait is bounded.
  await loadRun.idle();
  if (progressTimer) clearInterval(progressTimer);
  if (progressMs > 0) {
    // The last line's rates are over the whole sending time, as the summary's: the time since
    // the previous line can be a few ms, too short for a rate, and the wait for the answers in
    // flight sends nothing.
    drawProgress(first, loadRun.sendingMs);
    if (tty) out.write("\n");
  }
  targets.close();

  const summary = summarize(stats, {
    urls,
    rate: options.rate,
    seed,
    sendingMs: loadRun.sendingMs,
  });
  if (options.json) process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
  else out.write(summaryText(summary));
  // Nothing got through (the nodes went away after the probe, or every request timed out): a
  // Kubernetes Job or a script sees it failed. Errors among answers are a run's result, not this.
  if (summary.answered === 0 && summary.errors.total > 0)
    fail(`no request was answered: ${count(summary.errors.kinds)}`, 3);
}

// A reader that went away (`npm run load | head -1`): end quietly.
exitQuietlyWhenOutputCloses();

let options: LoadOptions;
try {
  options = parseOptions(process.argv.slice(2));
} catch (error) {
  if (error instanceof UsageError)
    fail(`${error.message}\n(npm run load -- --help lists the options)`, 2);
  throw error;
}
if (options.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
await run(options);
process.exit(0);
