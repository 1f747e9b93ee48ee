import http from "node:http";
import { join } from "node:path";
import {
  BenchCluster,
  REPO,
  bucketQuantile,
  buckets,
  metric,
  view,
  type LikesNode,
} from "../lib/likes.js";
import { Proc, sleep, until } from "../lib/proc.js";
import { figure, quantile, type Figure } from "../lib/stats.js";

export interface ConvergenceOptions {
  readonly root: string;
  readonly rate: number;
  readonly seconds: number;
  readonly partitionSeconds: number;
  /** Partitions healed, one after another on the same cluster. */
  readonly partitionRounds: number;
}

export interface ConvergenceResult {
  readonly rate: number;
  readonly posted: number;
  readonly errors: number;
  readonly probes: number;
  /** External probe: a marked like posted to one node until both others answer it. */
  readonly probeMs: { p50: number; p99: number; max: number };
  /** The nodes' own likes_convergence_seconds, from the histogram buckets. */
  readonly selfReportedMs: { p50: number; p99: number };
  readonly messagesPerLike: number;
  readonly bytesPerLikePerPeer: number;
  readonly idleBytesPerSecondPerPair: number;
  /** From healing a 5 s partition of one node (under the same load) to all version vectors equal. */
  readonly healMs: Figure;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });

function request(
  port: number,
  method: string,
  path: string,
  body?: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method,
        path,
        agent,
        headers: body ? { "content-type": "application/json" } : {},
      },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function liked(node: LikesNode, post: string, user: string): Promise<boolean> {
  const res = await request(node.http, "GET", `/likes?post=${post}&user=${user}`);
  return (JSON.parse(res.text) as { liked: boolean }).liked;
}

/** Open-loop load of `rate` likes a second spread over the nodes, from a child process. */
function load(nodes: readonly LikesNode[], rate: number, tag: string) {
  const proc = new Proc("load", process.execPath, [
    join(REPO, "dist-bench/bench/load.js"),
    String(rate),
    tag,
    nodes.map((n) => n.http).join(","),
  ]);
  return {
    stop: async (): Promise<{ posted: number; errors: number }> => {
      await proc.stop();
      return JSON.parse(proc.output.trim().split("\n").at(-1) ?? "{}") as {
        posted: number;
        errors: number;
      };
    },
  };
}

async function gossipTotals(
  nodes: readonly LikesNode[],
): Promise<{ messages: number; bytes: number }> {
  let messages = 0;
  let bytes = 0;
  for (const node of nodes) {
    messages += await metric(node, "likes_gossip_messages_total", 'result="ok"');
    bytes += await metric(node, "likes_gossip_bytes_total", 'direction="out"');
  }
  return { messages, bytes };
}

async function allEqual(nodes: readonly LikesNode[]): Promise<boolean> {
  const views = await Promise.all(nodes.map((n) => view(n)));
  const first = JSON.stringify(Object.entries(views[0]!.vv).sort());
  return views.every((v) => JSON.stringify(Object.entries(v.vv).sort()) === first);
}

async function startCluster(root: string, proxied: boolean): Promise<BenchCluster> {
  const cluster = await BenchCluster.start({
    size: 3,
    root,
    proxied,
    env: { OTEL_SDK_DISABLED: "true" },
  });
  // Nodes greet their peers at start; one started before its peers retries within a second.
  await until(
    "peers up",
    async () =>
      (await Promise.all(cluster.nodes.map(view))).every((v) => v.peers.every((p) => p.up)),
    10_000,
    50,
  );
  return cluster;
}

/**
 * Steady state and idle on a cluster whose nodes talk directly, as deployed; the partition on
 * one whose peer traffic goes through TCP proxies in this process, which can cut a node off
 * (a proxy hop would add its own latency and CPU to the steady-state figures).
 */
export async function convergence(o: ConvergenceOptions): Promise<ConvergenceResult> {
  const steadyState = await steady(o);
  const partition = await heal(o);
  return {
    ...steadyState,
    errors: steadyState.errors + partition.errors,
    healMs: partition.healMs,
  };
}

async function steady(o: ConvergenceOptions): Promise<Omit<ConvergenceResult, "healMs">> {
  const cluster = await startCluster(join(o.root, "convergence"), false);
  const nodes = cluster.nodes;
  try {
    const before = await gossipTotals(nodes);
    const traffic = load(nodes, o.rate, "steady");
    const probeMs: number[] = [];
    const end = Date.now() + o.seconds * 1000;
    for (let k = 0; Date.now() < end; k++) {
      const origin = nodes[k % 3] as LikesNode;
      const others = nodes.filter((n) => n !== origin);
      const post = `probe-${k}`;
      const res = await request(
        origin.http,
        "POST",
        "/like",
        JSON.stringify({ post, user: "probe" }),
      );
      const acked = performance.now();
      if (res.status !== 201) continue;
      const pending = new Set(others);
      while (pending.size > 0 && performance.now() - acked < 5000) {
        for (const node of [...pending]) if (await liked(node, post, "probe")) pending.delete(node);
        if (pending.size > 0) await sleep(1);
      }
      probeMs.push(performance.now() - acked);
      await sleep(40);
    }
    const steady = await traffic.stop();
    await until("converged after the steady load", () => allEqual(nodes), 10_000, 20);
    const after = await gossipTotals(nodes);
    const posted = steady.posted + probeMs.length;
    const conv = (
      await Promise.all(nodes.map((n) => buckets(n, "likes_convergence_seconds")))
    ).reduce(
      (sum, b) => b.map(([le, c], i) => [le, c + (sum[i]?.[1] ?? 0)] as [number, number]),
      [] as [number, number][],
    );

    // Idle: converged, no writes; only anti-entropy talks.
    await sleep(1000);
    const idleStart = await gossipTotals(nodes);
    const idleWindow = 5;
    await sleep(idleWindow * 1000);
    const idleEnd = await gossipTotals(nodes);

    return {
      rate: o.rate,
      posted,
      errors: steady.errors,
      probes: probeMs.length,
      probeMs: {
        p50: quantile(probeMs, 0.5),
        p99: quantile(probeMs, 0.99),
        max: Math.max(...probeMs),
      },
      selfReportedMs: {
        p50: bucketQuantile(0.5, conv) * 1000,
        p99: bucketQuantile(0.99, conv) * 1000,
      },
      messagesPerLike: (after.messages - before.messages) / posted,
      bytesPerLikePerPeer: (after.bytes - before.bytes) / posted / (nodes.length - 1),
      idleBytesPerSecondPerPair: (idleEnd.bytes - idleStart.bytes) / idleWindow / 3,
    };
  } finally {
    await cluster.stop();
  }
}

/** A 5 s partition of node3 under load, then the time from healing to equal vectors. */
async function heal(o: ConvergenceOptions): Promise<{ healMs: Figure; errors: number }> {
  const cluster = await startCluster(join(o.root, "partition"), true);
  const nodes = cluster.nodes;
  const healMs: number[] = [];
  let errors = 0;
  try {
    for (let round = 0; round < o.partitionRounds; round++) {
      const partitionLoad = load(nodes, o.rate, `partition${round}`);
      cluster.isolate(2, true);
      await sleep(o.partitionSeconds * 1000);
      const partitioned = await partitionLoad.stop();
      errors += partitioned.errors;
      await sleep(200);
      cluster.isolate(2, false);
      healMs.push(await until("converged after healing", () => allEqual(nodes), 30_000, 5));
    }
    return { healMs: figure(healMs), errors };
  } finally {
    await cluster.stop();
  }
}
