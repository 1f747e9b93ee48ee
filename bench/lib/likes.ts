import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { TcpProxy, freePorts } from "../../test/support/tcp-proxy.js";
import { Proc, waitForPort } from "./proc.js";

export const REPO = fileURLToPath(new URL("../../..", import.meta.url));
export const SECRET = "bench-cluster-secret-0123456789";

export interface LikesNode {
  readonly name: string;
  readonly http: number;
  readonly admin: number;
  /** Its own peer port (not a proxy's). */
  readonly peer: number;
  readonly dataDir: string;
  proc: Proc;
}

export interface ClusterOptions {
  readonly size: number;
  readonly root: string;
  readonly node?: string;
  readonly main?: string;
  readonly env?: Record<string, string>;
  /** Route peer traffic through TCP proxies, so that a node can be cut off. */
  readonly proxied?: boolean;
  /** Data directories to start from, by node index. */
  readonly dataDirs?: readonly (string | undefined)[];
  /** Nodes (by index) that `start` does not launch: `startNode` does, once the others serve. */
  readonly later?: readonly number[];
}

/** A local likes cluster of real processes for the benchmark. */
export class BenchCluster {
  private constructor(
    readonly nodes: LikesNode[],
    private readonly proxies: (TcpProxy | undefined)[][],
    private readonly options: ClusterOptions,
    private readonly peerPorts: number[],
  ) {}

  static async start(options: ClusterOptions): Promise<BenchCluster> {
    // Proxies first (they hold their ports), then the nodes' ports, all reserved at once, so
    // that no port is handed out twice.
    const proxies: (TcpProxy | undefined)[][] = [];
    for (let i = 0; i < options.size; i++)
      proxies.push(
        await Promise.all(
          Array.from({ length: options.size }, async (_, j) =>
            options.proxied && i !== j ? TcpProxy.start() : undefined,
          ),
        ),
      );
    const ports = await freePorts(options.size * 3);
    const peerPorts = ports.slice(0, options.size);
    for (const row of proxies)
      row.forEach((proxy, j) => proxy && (proxy.target = peerPorts[j] as number));
    const nodes: LikesNode[] = [];
    for (let i = 0; i < options.size; i++) {
      const dataDir = options.dataDirs?.[i] ?? join(options.root, `node${i + 1}`);
      mkdirSync(dataDir, { recursive: true });
      nodes.push({
        name: `node${i + 1}`,
        http: ports[options.size + i] as number,
        admin: ports[2 * options.size + i] as number,
        peer: peerPorts[i] as number,
        dataDir,
        proc: undefined as unknown as Proc,
      });
    }
    const cluster = new BenchCluster(nodes, proxies, options, peerPorts);
    await Promise.all(
      nodes.map((_, i) => (options.later?.includes(i) ? Promise.resolve() : cluster.startNode(i))),
    );
    return cluster;
  }

  /** Launches node i and waits until it serves. */
  async startNode(i: number): Promise<void> {
    const node = this.nodes[i] as LikesNode;
    this.launch(i);
    try {
      await waitForPort(node.http);
      // The ports open before the store: a node serves once it says it is ready.
      await waitForReady(node.http);
    } catch (error) {
      // What the node said is what tells why.
      throw new Error(`${node.name}: ${String(error)}\n${node.proc.output}`);
    }
  }

  launch(i: number): void {
    const node = this.nodes[i] as LikesNode;
    const peers = this.peerPorts
      .map((port, j) => (j === i ? undefined : `127.0.0.1:${this.proxies[i]?.[j]?.port ?? port}`))
      .filter((p): p is string => p !== undefined);
    node.proc = new Proc(
      node.name,
      this.options.node ?? process.execPath,
      [this.options.main ?? join(REPO, "dist/main.js")],
      {
        LIKES_NODE_NAME: node.name,
        LIKES_HOST: "127.0.0.1",
        LIKES_HTTP_PORT: String(node.http),
        LIKES_PEER_PORT: String(this.peerPorts[i]),
        LIKES_ADMIN_PORT: String(node.admin),
        LIKES_PEERS: peers.join(","),
        LIKES_DATA_DIR: node.dataDir,
        LIKES_CLUSTER_SECRET: SECRET,
        LOG_LEVEL: "warn",
        ...this.options.env,
      },
    );
  }

  isolate(i: number, cut: boolean): void {
    this.proxies.forEach((row, from) =>
      row.forEach((proxy, to) => {
        if (proxy && (from === i || to === i)) {
          if (cut) proxy.partition();
          else proxy.heal();
        }
      }),
    );
  }

  async stop(): Promise<void> {
    // A node of `later` that was never started has no process.
    await Promise.all(
      this.nodes.map((n) => (n.proc as Proc | undefined)?.stop() ?? Promise.resolve()),
    );
    await Promise.all(this.proxies.flat().map(async (p) => p?.close()));
  }
}

export interface ClusterView {
  vv: Record<string, number>;
  peers: { up: boolean | null; pending: number }[];
}

/** Polls a node's /readyz until it answers 200. */
export async function waitForReady(http: number, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await isReady(http))) {
    if (Date.now() > deadline) throw new Error(`port ${http} not ready within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export async function isReady(http: number): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${http}/readyz`)).ok;
  } catch {
    return false;
  }
}

export async function view(node: LikesNode): Promise<ClusterView> {
  return (await (await fetch(`http://127.0.0.1:${node.admin}/cluster`)).json()) as ClusterView;
}

/** Sum of a metric's samples (optionally only those whose labels contain `filter`) on a node. */
export async function metric(node: LikesNode, name: string, filter = ""): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.admin}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n"))
    if ((line.startsWith(`${name} `) || line.startsWith(`${name}{`)) && line.includes(filter))
      sum += Number(line.split(" ").at(-1));
  return sum;
}

/** Histogram buckets of a metric on a node, summed over label sets: [upper bound, count]. */
export async function buckets(node: LikesNode, name: string): Promise<[number, number][]> {
  const text = await (await fetch(`http://127.0.0.1:${node.admin}/metrics`)).text();
  const byLe = new Map<number, number>();
  for (const line of text.split("\n")) {
    const match = new RegExp(`^${name}_bucket\\{.*le="([^"]+)".*\\} (\\S+)`).exec(line);
    if (match) {
      const le = match[1] === "+Inf" ? Infinity : Number(match[1]);
      byLe.set(le, (byLe.get(le) ?? 0) + Number(match[2]));
    }
  }
  return [...byLe].sort((a, b) => a[0] - b[0]);
}

/** A quantile from cumulative buckets, interpolated linearly inside a bucket (as PromQL does). */
export function bucketQuantile(q: number, cumulative: [number, number][]): number {
  const total = cumulative.at(-1)?.[1] ?? 0;
  if (total === 0) return NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of cumulative) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1, count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}
