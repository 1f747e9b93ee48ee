import { join } from "node:path";
import { freePort } from "../../test/support/tcp-proxy.js";
import { BenchCluster, REPO } from "../lib/likes.js";
import { startOtlpSink } from "../lib/otlp-sink.js";
import { Proc, cpuSeconds, waitForPort } from "../lib/proc.js";
import { figure, ratio, type Figure } from "../lib/stats.js";
import { wrk, type WrkResult } from "../lib/wrk.js";

export interface ThroughputOptions {
  readonly label: string;
  readonly node: string;
  readonly likesMain: string;
  readonly root: string;
  readonly rounds: number;
  readonly seconds: number;
  readonly connections: number;
}

export type TargetName = "M" | "R" | "likes" | "likes-notrace" | "one";

export interface TargetFigures {
  readonly rps: Figure;
  readonly p50Ms: Figure;
  readonly p99Ms: Figure;
  /** CPU µs per request of the process that took the load. */
  readonly cpuUs: Figure;
  /** CPU µs per request of every process of the target (a cluster's nodes; R's Redis). */
  readonly cpuUsAll: Figure;
}

export interface ThroughputResult {
  readonly label: string;
  readonly post: Record<TargetName, TargetFigures>;
  readonly get: Record<TargetName, TargetFigures>;
  readonly ratios: {
    readonly likesOverR: Figure;
    readonly likesOverM: Figure;
    readonly oneOverM: Figure;
    readonly tracingOverOff: Figure;
    readonly getTracingOverOff: Figure;
    readonly getLikesOverM: Figure;
    readonly getLikesOverR: Figure;
  };
}

/** Load on each target before the measured rounds. */
const WARM_UP_SECONDS = 2;

interface Target {
  readonly port: number;
  /** The process that takes the load first, then the others of the target. */
  readonly pids: readonly (number | undefined)[];
}

interface Run extends WrkResult {
  readonly cpuUs: number;
  readonly cpuUsAll: number;
}

/**
 * The targets in the order of one round: each round starts with another target, and every
 * other round runs backwards, so that no target always follows the same one (the traced
 * cluster and the untraced one swap places) nor always runs first or last.
 */
export function roundOrder<T>(targets: readonly T[], round: number): T[] {
  const shift = (2 * round) % Math.max(1, targets.length);
  const order = [...targets.slice(shift), ...targets.slice(0, shift)];
  return round % 2 === 0 ? order : order.reverse();
}

/** One wrk run with the CPU its target's processes used over it, per request. */
async function measured(target: Target, options: Parameters<typeof wrk>[1]): Promise<Run> {
  const before = target.pids.map(cpuSeconds);
  const result = await wrk(target.port, options);
  const used = target.pids.map((pid, i) => cpuSeconds(pid) - (before[i] as number));
  const per = (seconds: number) => (seconds * 1e6) / Math.max(1, result.requests);
  return {
    ...result,
    cpuUs: per(used[0] as number),
    cpuUsAll: per(used.reduce((a, b) => a + b, 0)),
  };
}

/**
 * POST /like and GET /likes on five targets, round-robin within each round so that the noise
 * of the machine falls on all of them alike: express+Map (M), express+Redis SADD (R), likes as
 * deployed (3 nodes, tracing at the default sampler exporting to a sink), likes without
 * tracing, and one likes node as deployed but without peers (the node's own cost, apart from
 * replication's). Load goes to one node of each cluster; its two peers receive the pushes.
 * Beside each rate: the CPU per request of the loaded process and of all the target's processes.
 * Each target first takes WARM_UP_SECONDS of each load, not counted.
 */
export async function throughput(o: ThroughputOptions): Promise<ThroughputResult> {
  const sink = await startOtlpSink();
  const redisPort = await freePort();
  const redis = new Proc("redis", "redis-server", [
    "--port",
    String(redisPort),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
  ]);
  await waitForPort(redisPort);
  const baseline = async (file: string, env: Record<string, string> = {}) => {
    const port = await freePort();
    const proc = new Proc(file, o.node, [join(REPO, "dist-bench/bench/targets", file)], {
      PORT: String(port),
      ...env,
    });
    await waitForPort(port);
    return { port, proc };
  };
  const m = await baseline("baseline-memory.js");
  const r = await baseline("baseline-redis.js", { REDIS_PORT: String(redisPort) });
  const clusterEnv = { OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint };
  const traced = await BenchCluster.start({
    size: 3,
    root: join(o.root, `${o.label}-traced`),
    node: o.node,
    main: o.likesMain,
    env: clusterEnv,
  });
  const untraced = await BenchCluster.start({
    size: 3,
    root: join(o.root, `${o.label}-untraced`),
    node: o.node,
    main: o.likesMain,
    env: { OTEL_SDK_DISABLED: "true" },
  });
  const one = await BenchCluster.start({
    size: 1,
    root: join(o.root, `${o.label}-one`),
    node: o.node,
    main: o.likesMain,
    env: clusterEnv,
  });
  const cluster = (c: BenchCluster): Target => ({
    port: c.nodes[0]!.http,
    pids: c.nodes.map((n) => n.proc.pid),
  });
  const targets: Record<TargetName, Target> = {
    M: { port: m.port, pids: [m.proc.pid] },
    R: { port: r.port, pids: [r.proc.pid, redis.pid] },
    likes: cluster(traced),
    "likes-notrace": cluster(untraced),
    one: cluster(one),
  };
  const post: Record<string, Run[]> = {};
  const get: Record<string, Run[]> = {};
  try {
    // Unmeasured: each target's first load compiles its hot paths (and, traced, the SDK's
    // first sampled spans and export), which the first round would otherwise count.
    for (const target of Object.values(targets)) {
      const warm = { seconds: WARM_UP_SECONDS, connections: o.connections, tag: `${o.label}-warm` };
      await wrk(target.port, { ...warm, post: true });
      await wrk(target.port, { ...warm, post: false, path: "/likes?post=p1" });
    }
    for (let round = 0; round < o.rounds; round++)
      for (const [name, target] of roundOrder(Object.entries(targets), round)) {
        const tag = `${o.label}-${round}`;
        (post[name] ??= []).push(
          await measured(target, {
            seconds: o.seconds,
            connections: o.connections,
            post: true,
            tag,
          }),
        );
        (get[name] ??= []).push(
          await measured(target, {
            seconds: Math.max(1, Math.floor(o.seconds / 2)),
            connections: o.connections,
            post: false,
            path: "/likes?post=p1",
          }),
        );
      }
  } finally {
    await Promise.all([
      traced.stop(),
      untraced.stop(),
      one.stop(),
      m.proc.stop(),
      r.proc.stop(),
      redis.stop(),
      sink.close(),
    ]);
  }
  const rps = (name: string, from: Record<string, Run[]>) => (from[name] ?? []).map((x) => x.rps);
  const summary = (from: Record<string, Run[]>, name: string): TargetFigures => {
    const of = (pick: (run: Run) => number) => figure((from[name] ?? []).map(pick));
    return {
      rps: of((x) => x.rps),
      p50Ms: of((x) => x.p50Ms),
      p99Ms: of((x) => x.p99Ms),
      cpuUs: of((x) => x.cpuUs),
      cpuUsAll: of((x) => x.cpuUsAll),
    };
  };
  const names = Object.keys(targets) as TargetName[];
  return {
    label: o.label,
    post: Object.fromEntries(names.map((n) => [n, summary(post, n)])) as ThroughputResult["post"],
    get: Object.fromEntries(names.map((n) => [n, summary(get, n)])) as ThroughputResult["get"],
    ratios: {
      likesOverR: ratio(rps("likes", post), rps("R", post)),
      likesOverM: ratio(rps("likes", post), rps("M", post)),
      oneOverM: ratio(rps("one", post), rps("M", post)),
      tracingOverOff: ratio(rps("likes", post), rps("likes-notrace", post)),
      getTracingOverOff: ratio(rps("likes", get), rps("likes-notrace", get)),
      getLikesOverM: ratio(rps("likes", get), rps("M", get)),
      getLikesOverR: ratio(rps("likes", get), rps("R", get)),
    },
  };
}
