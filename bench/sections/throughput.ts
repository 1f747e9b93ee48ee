import { join } from "node:path";
import { freePort } from "../../test/support/tcp-proxy.js";
import { BenchCluster, REPO } from "../lib/likes.js";
import { startOtlpSink } from "../lib/otlp-sink.js";
import { Proc, waitForPort } from "../lib/proc.js";
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

type TargetName = "M" | "R" | "likes" | "likes-notrace";

export interface ThroughputResult {
  readonly label: string;
  readonly post: Record<TargetName, { rps: Figure; p50Ms: Figure; p99Ms: Figure }>;
  readonly get: Record<TargetName, { rps: Figure; p50Ms: Figure; p99Ms: Figure }>;
  readonly ratios: {
    readonly likesOverR: Figure;
    readonly likesOverM: Figure;
    readonly tracingOverOff: Figure;
    readonly getLikesOverM: Figure;
    readonly getLikesOverR: Figure;
  };
}

/**
 * POST /like and GET /likes on four targets, round-robin within each round so that the noise
 * of the machine falls on all of them alike: express+Map (M), express+Redis SADD (R), likes as
 * deployed (3 nodes, tracing at the default sampler exporting to a sink) and likes without
 * tracing. Load goes to one node of each cluster; its two peers receive the pushes.
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
  const targets: Record<TargetName, number> = {
    M: m.port,
    R: r.port,
    likes: traced.nodes[0]!.http,
    "likes-notrace": untraced.nodes[0]!.http,
  };
  const post: Record<string, WrkResult[]> = {};
  const get: Record<string, WrkResult[]> = {};
  try {
    for (let round = 0; round < o.rounds; round++)
      for (const [name, port] of Object.entries(targets)) {
        const tag = `${o.label}-${round}`;
        (post[name] ??= []).push(
          await wrk(port, { seconds: o.seconds, connections: o.connections, post: true, tag }),
        );
        (get[name] ??= []).push(
          await wrk(port, {
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
      m.proc.stop(),
      r.proc.stop(),
      redis.stop(),
      sink.close(),
    ]);
  }
  const rps = (name: string, from: Record<string, WrkResult[]>) =>
    (from[name] ?? []).map((x) => x.rps);
  const summary = (from: Record<string, WrkResult[]>, name: string) => ({
    rps: figure(rps(name, from)),
    p50Ms: figure((from[name] ?? []).map((x) => x.p50Ms)),
    p99Ms: figure((from[name] ?? []).map((x) => x.p99Ms)),
  });
  const names = Object.keys(targets) as TargetName[];
  return {
    label: o.label,
    post: Object.fromEntries(names.map((n) => [n, summary(post, n)])) as ThroughputResult["post"],
    get: Object.fromEntries(names.map((n) => [n, summary(get, n)])) as ThroughputResult["get"],
    ratios: {
      likesOverR: ratio(rps("likes", post), rps("R", post)),
      likesOverM: ratio(rps("likes", post), rps("M", post)),
      tracingOverOff: ratio(rps("likes", post), rps("likes-notrace", post)),
      getLikesOverM: ratio(rps("likes", get), rps("M", get)),
      getLikesOverR: ratio(rps("likes", get), rps("R", get)),
    },
  };
}
