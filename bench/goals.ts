// The benchmark's goals: each section's result as rows of the table `make bench` prints. A row
// with a goal is judged (met or not); one with "—" is reported. Goals are judged on the runtime
// the image ships; the same figure on another runtime is a reported row.
import { MAX_TRACKED } from "../src/replication/convergence.js";
import type { CommitsResult } from "./sections/commits.js";
import type { ConvergenceResult } from "./sections/convergence.js";
import type { NoPeersResult } from "./sections/no-peers.js";
import type {
  CatchUpResult,
  IncrementalCatchUpResult,
  SizeResult,
  SnapshotJoinResult,
} from "./sections/storage.js";
import type { ThroughputResult } from "./sections/throughput.js";
import { figure, fmt, show, type Figure } from "./lib/stats.js";

export type Goal = [figure: string, measured: string, goal: string, met: boolean | undefined];

const reported = (name: string, measured: string): Goal => [name, measured, "—", undefined];

/** Throughput against the baselines, on one runtime; judged only on the shipped one. */
export function throughputGoals(t: ThroughputResult, judged: boolean): Goal[] {
  const goal = (name: string, measured: string, target: string, met: boolean): Goal => [
    `${name} (${t.label})`,
    measured,
    judged ? target : "—",
    judged ? met : undefined,
  ];
  const atLeast = (name: string, ratio: Figure, min: number, target: string): Goal =>
    goal(name, show(ratio), target, ratio.median >= min);
  const { ratios } = t;
  const cpu = t.post.likes;
  return [
    atLeast("POST /like, 3 nodes / baseline M", ratios.likesOverM, 1, "≥ 1.0"),
    atLeast("POST /like, 3 nodes / baseline R", ratios.likesOverR, 1.3, "≥ 1.3"),
    atLeast("POST /like, one node, no peers / baseline M", ratios.oneOverM, 1.5, "≥ 1.5"),
    goal(
      "CPU per like: loaded node (all 3 nodes; M per request)",
      `${fmt(cpu.cpuUs.median, 0)} µs (${fmt(cpu.cpuUsAll.median, 0)}; M ${fmt(t.post.M.cpuUs.median, 0)})`,
      "≤ 100 µs",
      cpu.cpuUs.median <= 100,
    ),
    atLeast("POST: default sampler / OTEL_SDK_DISABLED", ratios.tracingOverOff, 0.95, "≥ 0.95"),
    atLeast(
      "GET count: default sampler / OTEL_SDK_DISABLED",
      ratios.getTracingOverOff,
      0.95,
      "≥ 0.95",
    ),
    atLeast("GET count: likes / baseline M", ratios.getLikesOverM, 1, "≥ 1.0"),
  ];
}

/** Convergence, messages and the links' costs, on the shipped runtime. */
export function convergenceGoals(
  c: ConvergenceResult,
  runtime: string,
  partitionSeconds: number,
): Goal[] {
  return [
    [
      `convergence p50 / p99, ${c.rate} likes/s, 3 nodes (probe, ${runtime})`,
      `${fmt(c.probeMs.p50)} / ${fmt(c.probeMs.p99)} ms (max ${fmt(c.probeMs.max)})`,
      "≤ 5 / ≤ 25 ms",
      c.probeMs.p50 <= 5 && c.probeMs.p99 <= 25,
    ],
    [
      "one like on an idle cluster, accepted → readable on every node, p50 (p99)",
      `${fmt(c.idleLikeMs.p50)} ms (${fmt(c.idleLikeMs.p99)})`,
      "≤ 3 ms",
      c.idleLikeMs.p50 <= 3,
    ],
    [
      `CPU per like on each receiving peer, ${c.rate} likes/s to one node`,
      show(c.receiverCpuUsPerLike, 1, " µs"),
      "≤ 20 µs",
      c.receiverCpuUsPerLike.median <= 20,
    ],
    [
      `group commits per second per node (busiest), ${c.rate} likes/s; likes per commit`,
      `${fmt(c.commitsPerSecond, 0)}; ${fmt(c.likesPerCommit, 2)}`,
      "≤ 400",
      c.commitsPerSecond <= 400,
    ],
    reported(
      "likes_convergence_seconds p50 / p99 (nodes' own)",
      `${fmt(c.selfReportedMs.p50)} / ${fmt(c.selfReportedMs.p99)} ms`,
    ),
    [
      `converged after a ${partitionSeconds} s partition heals`,
      `${fmt(c.healMs.median, 0)} ms (${fmt(c.healMs.min, 0)}–${fmt(c.healMs.max, 0)})`,
      "≤ 300 ms",
      c.healMs.median <= 300,
    ],
    ["peer messages per like", fmt(c.messagesPerLike, 3), "≤ 0.5", c.messagesPerLike <= 0.5],
    [
      "bytes per like per peer (whole frames)",
      fmt(c.bytesPerLikePerPeer, 1),
      "≤ 48",
      c.bytesPerLikePerPeer <= 48,
    ],
    [
      "idle anti-entropy per pair of nodes",
      `${fmt(c.idleBytesPerSecondPerPair, 0)} B/s`,
      "≤ 200 B/s",
      c.idleBytesPerSecondPerPair <= 200,
    ],
    reported(
      "idle CPU per node (timers, anti-entropy; from /proc, 10 ms ticks over 5 s)",
      `${fmt(c.idleCpuMsPerSecond, 1)} ms/s`,
    ),
    [
      "idle anti-entropy per pair, 1,000 more origins (as after 1,000 restarts)",
      `${fmt(c.idleBytesPerSecondPerPairManyOrigins, 0)} B/s`,
      "≤ 1 KB/s",
      c.idleBytesPerSecondPerPairManyOrigins <= 1024,
    ],
  ];
}

/**
 * Reported, not judged: an empty node now joins by snapshot (judged below), and replaying the
 * log is judged against the raw insert rate of the same run (absolute rates on this machine
 * differ twofold between days).
 */
export function catchUpGoal(c: CatchUpResult): Goal {
  return reported(
    `catch-up of an empty node by log replay, snapshots off (${c.likes.toLocaleString("en-US")} likes)`,
    `${show(c.likesPerSecond, 0)} likes/s (${fmt(c.seconds.median)} s)`,
  );
}

export function incrementalCatchUpGoal(i: IncrementalCatchUpResult): Goal {
  return [
    `incremental catch-up of ${i.likes.toLocaleString("en-US")} likes / the store's raw insert rate (${i.runtime})`,
    `${show(i.ratio)} (${fmt(i.likesPerSecond.median, 0)} / ${fmt(i.rawLikesPerSecond.median, 0)} likes/s)`,
    "≥ 0.8",
    i.ratio.median >= 0.8,
  ];
}

export function snapshotJoinGoal(j: SnapshotJoinResult): Goal {
  return [
    `empty node joins ${j.likes.toLocaleString("en-US")} likes by snapshot (ready, all likes; ${j.runtime})`,
    `${show(j.seconds)} s (${fmt(j.bytes / 1e6, 0)} MB)`,
    "≤ 10 s",
    j.seconds.median <= 10,
  ];
}

/** Memory and disk at one size; the RSS goal is for the largest (`judgeRss`). */
export function sizeGoals(s: SizeResult, judgeRss: boolean): Goal[] {
  const likes = s.likes.toLocaleString("en-US");
  return [
    [
      `RSS at ${likes} likes`,
      `${fmt(s.rssMb, 0)} MB`,
      judgeRss ? "≤ 150 MB" : "—",
      judgeRss ? s.rssMb <= 150 : undefined,
    ],
    [
      `disk per like at ${likes} likes`,
      `${fmt(s.diskBytesPerLike, 1)} B`,
      "≤ 64 B",
      s.diskBytesPerLike <= 64,
    ],
    reported(
      `count query p99 at ${likes} likes`,
      `${fmt(s.countP99Ms)} ms (${fmt(s.countRps, 0)} req/s)`,
    ),
  ];
}

/** Reported: the part of a receiving peer's CPU per like that its commits take. */
export function commitsGoal(c: CommitsResult, likesPerCommit: number): Goal {
  return reported(
    `a commit of ${likesPerCommit} likes from a peer, the store alone (${c.held.toLocaleString("en-US")} held; ${c.runtime}): transaction; WAL written`,
    `${show(c.transactionUs, 0, " µs")}; ${fmt(c.walBytesPerCommit.median / 1024, 1)} KiB`,
  );
}

export function noPeersGoal(runs: readonly NoPeersResult[]): Goal {
  const growth = figure(runs.map((n) => n.pastBoundUs / n.beforeBoundUs));
  const us = (pick: (n: NoPeersResult) => number) => fmt(figure(runs.map(pick)).median, 1);
  return [
    `write CPU past ${MAX_TRACKED.toLocaleString("en-US")} unconverged / before (no peer acks)`,
    `${show(growth)} (${us((n) => n.beforeBoundUs)} → ${us((n) => n.pastBoundUs)} µs/like)`,
    "≤ 1.25",
    growth.median <= 1.25,
  ];
}
