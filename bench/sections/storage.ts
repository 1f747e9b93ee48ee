import { execFileSync } from "node:child_process";
import { cpSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { figure, ratio, type Figure } from "../lib/stats.js";
import { freePorts } from "../../test/support/tcp-proxy.js";
import { BenchCluster, REPO, SECRET, isReady, metric, view, type LikesNode } from "../lib/likes.js";
import type { Runtime } from "../lib/node24.js";
import { SEEDED_ORIGIN } from "../lib/seeded.js";
import { Proc, until } from "../lib/proc.js";
import { wrk } from "../lib/wrk.js";

export interface SeedOptions {
  /** The runtime that runs the generator (its better-sqlite3 is built for it). */
  readonly runtime?: Pick<Runtime, "node" | "gen">;
  /** The seq of the first like written (the likes are the same in every run for a seq). */
  readonly first?: number;
  /** Likes per apply (one commit each). */
  readonly batch?: number;
}

/**
 * Writes `count` likes of one foreign origin into a data directory (a child process) with the
 * store's own apply; returns the applies' time alone, in ms.
 */
export function seed(dataDir: string, count: number, options: SeedOptions = {}): number {
  const { runtime, first = 1, batch = 20_000 } = options;
  const out = execFileSync(
    runtime?.node ?? process.execPath,
    [
      runtime?.gen ?? join(REPO, "dist-bench/bench/gen.js"),
      dataDir,
      String(count),
      "seeded",
      String(first),
      String(batch),
    ],
    { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] },
  );
  return (JSON.parse(out) as { applyMs: number }).applyMs;
}

/** A copy of a data directory that is a different node: same likes, its own origin. */
export function cloneAsNewNode(from: string, to: string, name: string): void {
  cpSync(from, to, { recursive: true });
  const db = new Database(join(to, "likes.db"));
  db.prepare("UPDATE meta SET value = ? WHERE key = 'origin'").run(
    `${name}~clone${Math.floor(Math.random() * 1e9).toString(36)}`,
  );
  db.close();
}

function diskBytes(dir: string): number {
  return readdirSync(dir).reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
}

function rssBytes(pid: number | undefined): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) * 1024;
}

/** What a node holds of the benchmark's origin; undefined while a busy node cannot answer. */
async function heldBy(node: LikesNode): Promise<number | undefined> {
  try {
    return (await view(node)).vv[SEEDED_ORIGIN];
  } catch (error) {
    // A commit of 100,000 entries on a loaded machine can hold the node's event loop past its
    // admin server's keep-alive timeout (5 s), which then resets the poll's connection.
    if (node.proc.hasExited) throw error;
    return undefined;
  }
}

/** Seconds until `node` holds the benchmark's origin up to `target` (polled every 20 ms). */
async function secondsUntilHolds(node: LikesNode, target: number | undefined, who: string) {
  const ms = await until(
    `${who} to catch up`,
    async () => (await heldBy(node)) === target,
    600_000,
    20,
  );
  return ms / 1000;
}

export interface CatchUpResult {
  readonly likes: number;
  readonly seconds: Figure;
  readonly likesPerSecond: Figure;
}

/**
 * An empty node joins two nodes that hold `count` likes; likes/s until its vector equals theirs.
 * Each round starts a new empty node against the same two (which take no writes meanwhile).
 */
export async function catchUp(root: string, count: number, rounds: number): Promise<CatchUpResult> {
  const a = join(root, "catchup-a");
  seed(a, count);
  cloneAsNewNode(a, join(root, "catchup-b"), "node2");
  const seconds: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const cluster = await BenchCluster.start({
      size: 3,
      root: join(root, `catchup-${round}`),
      // The log replayed entry by entry: no snapshot (snapshotJoin measures that).
      env: { OTEL_SDK_DISABLED: "true", LIKES_SNAPSHOT_THRESHOLD: "off" },
      dataDirs: [a, join(root, "catchup-b"), undefined],
      later: [2],
    });
    try {
      const target = (await view(cluster.nodes[0]!)).vv[SEEDED_ORIGIN];
      // It joins two nodes that serve already (see incrementalCatchUp); timed, as before, from
      // when it says it is ready.
      await cluster.startNode(2);
      seconds.push(await secondsUntilHolds(cluster.nodes[2]!, target, "the empty node"));
    } finally {
      await cluster.stop();
    }
  }
  return {
    likes: count,
    seconds: figure(seconds),
    likesPerSecond: figure(seconds.map((s) => count / s)),
  };
}

export interface IncrementalCatchUpResult {
  readonly runtime: string;
  /** Likes the behind node holds already, and the likes it lacks. */
  readonly held: number;
  readonly likes: number;
  readonly seconds: Figure;
  readonly likesPerSecond: Figure;
  /** The store's own apply of the same likes into a copy of the behind node's directory. */
  readonly rawLikesPerSecond: Figure;
  /** likesPerSecond / rawLikesPerSecond, round by round. */
  readonly ratio: Figure;
}

/** Likes per commit of the raw insert: as many as a catch-up commits at once (anti-entropy.ts). */
const RAW_BATCH = 100_000;

/**
 * A node that holds `held` likes and missed the next `missing` (as one that was down while its
 * peers took them) restarts next to two nodes that hold them all; likes/s until its vector
 * equals theirs. In the same round, the store's raw insert rate: the same likes applied by the
 * store itself, in batches, into a copy of the behind node's directory, on the same runtime.
 */
export async function incrementalCatchUp(o: {
  readonly root: string;
  readonly held: number;
  readonly missing: number;
  readonly rounds: number;
  readonly runtime: Runtime;
}): Promise<IncrementalCatchUpResult> {
  const { root, held, missing, runtime } = o;
  const behind = join(root, "inc-behind");
  const full = join(root, "inc-a");
  seed(behind, held, { runtime });
  cloneAsNewNode(behind, full, "node1");
  seed(full, missing, { runtime, first: held + 1 });
  cloneAsNewNode(full, join(root, "inc-b"), "node2");
  const target = held + missing;
  const seconds: number[] = [];
  const raw: number[] = [];
  for (let round = 0; round < o.rounds; round++) {
    const rawDir = join(root, `inc-raw-${round}`);
    cpSync(behind, rawDir, { recursive: true });
    const applyMs = seed(rawDir, missing, { runtime, first: held + 1, batch: RAW_BATCH });
    rmSync(rawDir, { recursive: true, force: true });
    raw.push(missing / (applyMs / 1000));
    const restarted = join(root, `inc-c-${round}`);
    cpSync(behind, restarted, { recursive: true });
    // The behind node restarts next to two nodes that serve already. Started all at once, it
    // was ready before them (their stores are larger) and began its catch-up only at its
    // retry of the peers that had refused it: about 0.4 s of nothing, counted in the figure.
    const cluster = await BenchCluster.start({
      size: 3,
      root: join(root, `inc-${round}`),
      node: runtime.node,
      main: runtime.likesMain,
      env: { OTEL_SDK_DISABLED: "true" },
      dataDirs: [full, join(root, "inc-b"), restarted],
      later: [2],
    });
    try {
      await cluster.startNode(2);
      seconds.push(await secondsUntilHolds(cluster.nodes[2]!, target, "the behind node"));
    } finally {
      await cluster.stop();
      rmSync(restarted, { recursive: true, force: true });
    }
  }
  const rates = seconds.map((s) => missing / s);
  return {
    runtime: runtime.label,
    held,
    likes: missing,
    seconds: figure(seconds),
    likesPerSecond: figure(rates),
    rawLikesPerSecond: figure(raw),
    ratio: ratio(rates, raw),
  };
}

export interface SnapshotJoinResult {
  readonly likes: number;
  readonly runtime: string;
  /** From the empty node's launch until it is ready and holds every like. */
  readonly seconds: Figure;
  /** The snapshot's size. */
  readonly bytes: number;
}

/**
 * An empty node joins two nodes that hold `count` likes (already serving) by snapshot: seconds
 * from its launch until `/readyz` answers 200 and its vector equals theirs. Each round is a new
 * empty node; a round that did not install a snapshot fails the run.
 */
export async function snapshotJoin(
  root: string,
  count: number,
  rounds: number,
  runtime?: Pick<Runtime, "label" | "node" | "likesMain">,
): Promise<SnapshotJoinResult> {
  const a = join(root, "join-a");
  seed(a, count);
  cloneAsNewNode(a, join(root, "join-b"), "node2");
  const cluster = await BenchCluster.start({
    size: 2,
    root: join(root, "join"),
    ...(runtime ? { node: runtime.node, main: runtime.likesMain } : {}),
    env: { OTEL_SDK_DISABLED: "true" },
    dataDirs: [a, join(root, "join-b")],
  });
  const seconds: number[] = [];
  let bytes = 0;
  try {
    const target = (await view(cluster.nodes[0]!)).vv[SEEDED_ORIGIN];
    for (let round = 0; round < rounds; round++) {
      const [http, admin, peer] = (await freePorts(3)) as [number, number, number];
      const node: LikesNode = {
        name: `joiner${round}`,
        http,
        admin,
        peer,
        dataDir: join(root, `join-${round}`),
        proc: undefined as unknown as Proc,
      };
      const started = performance.now();
      node.proc = new Proc(
        node.name,
        runtime?.node ?? process.execPath,
        [runtime?.likesMain ?? join(REPO, "dist/main.js")],
        {
          LIKES_NODE_NAME: node.name,
          LIKES_HOST: "127.0.0.1",
          LIKES_HTTP_PORT: String(http),
          LIKES_PEER_PORT: String(peer),
          LIKES_ADMIN_PORT: String(admin),
          LIKES_PEERS: cluster.nodes.map((n) => `127.0.0.1:${n.peer}`).join(","),
          LIKES_DATA_DIR: node.dataDir,
          LIKES_CLUSTER_SECRET: SECRET,
          LOG_LEVEL: "warn",
          OTEL_SDK_DISABLED: "true",
          // The default (100,000), or less for the smoke run's small store.
          LIKES_SNAPSHOT_THRESHOLD: String(Math.min(100_000, Math.floor(count / 2))),
        },
      );
      try {
        await until(
          "the empty node to be ready with every like",
          async () => (await isReady(http)) && (await view(node)).vv[SEEDED_ORIGIN] === target,
          600_000,
          20,
        );
        seconds.push((performance.now() - started) / 1000);
        if ((await metric(node, "likes_snapshots_total", 'role="install",result="ok"')) !== 1)
          throw new Error(`${node.name} did not install a snapshot:\n${node.proc.output}`);
        bytes = await metric(node, "likes_snapshot_bytes_total", 'direction="in"');
      } finally {
        await node.proc.stop();
      }
    }
  } finally {
    await cluster.stop();
  }
  return {
    likes: count,
    runtime: runtime?.label ?? `Node ${process.version}`,
    seconds: figure(seconds),
    bytes,
  };
}

export interface SizeResult {
  readonly likes: number;
  readonly rssMb: number;
  readonly diskBytesPerLike: number;
  readonly countP99Ms: number;
  readonly countRps: number;
}

/** A node holding `count` likes: its RSS, bytes on disk per like, and the count query's p99. */
export async function size(root: string, count: number, seconds: number): Promise<SizeResult> {
  const dir = join(root, `size-${count}`);
  seed(dir, count);
  const cluster = await BenchCluster.start({
    size: 1,
    root: join(root, `size-${count}-run`),
    env: { OTEL_SDK_DISABLED: "true" },
    dataDirs: [dir],
  });
  try {
    const node = cluster.nodes[0]!;
    await until(
      "the node to serve",
      async () => (await fetch(`http://127.0.0.1:${node.http}/readyz`)).ok,
      30_000,
      50,
    );
    const counts = await wrk(node.http, {
      seconds,
      connections: 8,
      post: false,
      path: "/likes?post=post-42",
    });
    return {
      likes: count,
      rssMb: rssBytes(node.proc.pid) / 1e6,
      diskBytesPerLike: diskBytes(dir) / count,
      countP99Ms: counts.p99Ms,
      countRps: counts.rps,
    };
  } finally {
    await cluster.stop();
  }
}
