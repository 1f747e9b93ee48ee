import http from "node:http";
import { join } from "node:path";
import type { Entry, NodeName, OriginId, PostId, UserId } from "../../src/crdt/index.js";
import { LinkTransport } from "../../src/link/client.js";
import { binaryCodec } from "../../src/replication/codec.js";
import {
  BenchCluster,
  REPO,
  SECRET,
  bucketQuantile,
  buckets,
  metric,
  view,
  type LikesNode,
} from "../lib/likes.js";
import { Proc, cpuSeconds, sleep, until } from "../lib/proc.js";
import { figure, quantile, type Figure } from "../lib/stats.js";

export interface ConvergenceOptions {
  readonly root: string;
  /** The node binary and likes' main.js to run (Node 24 and its copy, when provisioned). */
  readonly node: string;
  readonly main: string;
  readonly rate: number;
  readonly seconds: number;
  readonly partitionSeconds: number;
  /**
   * Rounds of what one pass leaves to chance: partitions healed one after another on the same
   * cluster, and loads on one node alone for the receiving peers' CPU.
   */
  readonly rounds: number;
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
  /** Process CPU of an idle node (timers, anti-entropy), ms a second, averaged over the three. */
  readonly idleCpuMsPerSecond: number;
  /** The same once the nodes hold 1,000 more origins, as after 1,000 restarts. */
  readonly idleBytesPerSecondPerPairManyOrigins: number;
  /** One like on the idle cluster: accepted (201) until both other nodes answer it, p50. */
  readonly idleLikeMs: { p50: number; p99: number };
  /** Process CPU per like on each of the two nodes that only receive (load on node1 only). */
  readonly receiverCpuUsPerLike: Figure;
  /** Group commits per second per node (the busiest), and likes per commit, during the steady load. */
  readonly commitsPerSecond: number;
  readonly likesPerCommit: number;
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

async function perNode(nodes: readonly LikesNode[], name: string): Promise<number[]> {
  return Promise.all(nodes.map((n) => metric(n, name)));
}

/**
 * Polls the nodes, `pauseMs` apart (not to load them), until each answers the like, for 5 s at
 * most. The nodes that have not answered yet are asked at once, not one after the other: a GET
 * takes about 1 ms here, and asking two nodes in turn made each round 2 ms or more, which the
 * figure then counted as convergence.
 */
async function visibleOn(
  nodes: readonly LikesNode[],
  post: string,
  user: string,
  pauseMs: number,
): Promise<void> {
  let pending = [...nodes];
  const started = performance.now();
  while (pending.length > 0 && performance.now() - started < 5000) {
    const answers = await Promise.all(pending.map((node) => liked(node, post, user)));
    pending = pending.filter((_, i) => !answers[i]);
    if (pending.length > 0) await sleep(pauseMs);
  }
}

/** Entries of `count` origins never seen before (seq 1 each): the vector of 1,000 restarts. */
async function addOrigins(node: LikesNode, count: number): Promise<void> {
  const transport = new LinkTransport(SECRET, "bench", binaryCodec);
  const ts = Date.now();
  try {
    for (let from = 0; from < count; from += 250) {
      const entries: Entry[] = [];
      for (let i = from; i < Math.min(count, from + 250); i++)
        entries.push({
          origin: `restarted~${i.toString(36).padStart(8, "0")}` as OriginId,
          seq: 1,
          post: `restart-${i}` as PostId,
          user: "bench" as UserId,
          ts,
        });
      await transport.send(`127.0.0.1:${node.peer}`, {
        kind: "deltas",
        node: "bench" as NodeName,
        origin: "bench~0" as OriginId,
        entries,
      });
    }
  } finally {
    transport.close();
  }
}

/**
 * What an idle cluster costs once it has settled for `settleMs` (long enough, after a change to
 * every vector, for each link to have carried it once: a sync sends its vector as a difference
 * from the link's previous one): gossip bytes a second per pair, and CPU ms a second per node.
 */
async function idleCosts(
  nodes: readonly LikesNode[],
  settleMs = 1000,
): Promise<{ bytesPerPair: number; cpuMsPerNode: number }> {
  await sleep(settleMs);
  const idleStart = await gossipTotals(nodes);
  // CPU from the kernel's count, read inside the scrapes: their own cost is not the node's idle.
  const cpu = () => nodes.reduce((sum, n) => sum + cpuSeconds(n.proc.pid), 0);
  const cpuStart = cpu();
  const idleWindow = 5;
  await sleep(idleWindow * 1000);
  const cpuEnd = cpu();
  const idleEnd = await gossipTotals(nodes);
  return {
    bytesPerPair: (idleEnd.bytes - idleStart.bytes) / idleWindow / 3,
    cpuMsPerNode: ((cpuEnd - cpuStart) * 1000) / idleWindow / nodes.length,
  };
}

async function allEqual(nodes: readonly LikesNode[]): Promise<boolean> {
  const views = await Promise.all(nodes.map((n) => view(n)));
  const first = JSON.stringify(Object.entries(views[0]!.vv).sort());
  return views.every((v) => JSON.stringify(Object.entries(v.vv).sort()) === first);
}

async function startCluster(
  o: ConvergenceOptions,
  dir: string,
  proxied: boolean,
): Promise<BenchCluster> {
  const cluster = await BenchCluster.start({
    size: 3,
    root: join(o.root, dir),
    node: o.node,
    main: o.main,
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
  const cluster = await startCluster(o, "convergence", false);
  const nodes = cluster.nodes;
  try {
    const before = await gossipTotals(nodes);
    const commitsBefore = await perNode(nodes, "likes_store_commit_seconds_count");
    const steadyStarted = performance.now();
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
      await visibleOn(others, post, "probe", 1);
      probeMs.push(performance.now() - acked);
      await sleep(40);
    }
    const steady = await traffic.stop();
    const steadySeconds = (performance.now() - steadyStarted) / 1000;
    const commitsAfter = await perNode(nodes, "likes_store_commit_seconds_count");
    await until("converged after the steady load", () => allEqual(nodes), 10_000, 20);
    const after = await gossipTotals(nodes);
    const commits = commitsAfter.map((c, i) => c - (commitsBefore[i] ?? 0));
    const posted = steady.posted + probeMs.length;
    const conv = (
      await Promise.all(nodes.map((n) => buckets(n, "likes_convergence_seconds")))
    ).reduce(
      (sum, b) => b.map(([le, c], i) => [le, c + (sum[i]?.[1] ?? 0)] as [number, number]),
      [] as [number, number][],
    );

    // Only node1 takes writes: what the two others spend is the cost of receiving. In rounds,
    // as the other figures: one pass spread from 53 to 99 µs between runs of one build.
    const receiverRounds: number[] = [];
    for (let round = 0; round < o.rounds; round++) {
      const cpuBefore = await perNode(nodes, "process_cpu_seconds_total");
      const receiving = load([nodes[0] as LikesNode], o.rate, `receive-${round}`);
      await sleep(o.seconds * 1000);
      const received = await receiving.stop();
      await until("converged after the receiving load", () => allEqual(nodes), 10_000, 20);
      const cpuAfter = await perNode(nodes, "process_cpu_seconds_total");
      const spent = cpuAfter[1]! - cpuBefore[1]! + cpuAfter[2]! - cpuBefore[2]!;
      receiverRounds.push((spent / 2 / received.posted) * 1e6);
    }

    // Idle: converged, no writes; only anti-entropy talks.
    const idle = await idleCosts(nodes);

    // One like at a time on the idle cluster.
    const idleLikeMs: number[] = [];
    for (let k = 0; k < 60; k++) {
      const origin = nodes[k % 3] as LikesNode;
      const post = `idle-${k}`;
      const res = await request(
        origin.http,
        "POST",
        "/like",
        JSON.stringify({ post, user: "idle" }),
      );
      const acked = performance.now();
      if (res.status !== 201) continue;
      await visibleOn(
        nodes.filter((n) => n !== origin),
        post,
        "idle",
        0.5,
      );
      idleLikeMs.push(performance.now() - acked);
      await sleep(50);
    }

    // As after 1,000 restarts: 1,000 more origins in every vector.
    await addOrigins(nodes[0] as LikesNode, 1000);
    await until("1,000 origins everywhere", () => allEqual(nodes), 30_000, 20);
    // Each node syncs with one of its two peers a second: after 12 s every link has synced since.
    const manyOriginsIdle = await idleCosts(nodes, 12_000);

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
      idleBytesPerSecondPerPair: idle.bytesPerPair,
      idleCpuMsPerSecond: idle.cpuMsPerNode,
      idleBytesPerSecondPerPairManyOrigins: manyOriginsIdle.bytesPerPair,
      idleLikeMs: { p50: quantile(idleLikeMs, 0.5), p99: quantile(idleLikeMs, 0.99) },
      receiverCpuUsPerLike: figure(receiverRounds),
      commitsPerSecond: Math.max(...commits) / steadySeconds,
      likesPerCommit: (posted * nodes.length) / commits.reduce((a, b) => a + b, 0),
    };
  } finally {
    await cluster.stop();
  }
}

/** A 5 s partition of node3 under load, then the time from healing to equal vectors. */
async function heal(o: ConvergenceOptions): Promise<{ healMs: Figure; errors: number }> {
  const cluster = await startCluster(o, "partition", true);
  const nodes = cluster.nodes;
  const healMs: number[] = [];
  let errors = 0;
  try {
    for (let round = 0; round < o.rounds; round++) {
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
