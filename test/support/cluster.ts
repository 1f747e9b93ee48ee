import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NodeProcess } from "./process.js";
import { TcpProxy } from "./tcp-proxy.js";
import { waitFor } from "./wait.js";

export const TEST_SECRET = "test-cluster-secret-0123456789";

interface Member {
  readonly name: string;
  readonly dataDir: string;
  readonly env: Record<string, string>;
  process: NodeProcess | undefined;
}

/**
 * A real cluster of `node dist/main.js` processes on 127.0.0.1. Every pair of nodes talks
 * through its own TCP proxy, so a test can cut any node off from the others and heal it.
 */
export class TestCluster {
  private constructor(
    readonly members: Member[],
    /** proxies[i][j]: how node i reaches node j's peer port. */
    private readonly proxies: (TcpProxy | undefined)[][],
    private readonly root: string,
  ) {}

  static async start(
    size: number,
    env: Record<string, string> = {},
    perNode: (i: number) => Record<string, string> = () => ({}),
  ): Promise<TestCluster> {
    const root = mkdtempSync(join(tmpdir(), "likes-cluster-"));
    // Every port is chosen by the kernel as it is bound (port 0), never picked in advance: a
    // port found free and released can be taken by someone else before the node binds it.
    // Nodes learn each other through the proxies, which learn each node's peer port at start.
    const indexes = Array.from({ length: size }, (_, i) => i);
    const proxies = await Promise.all(
      indexes.map((i) =>
        Promise.all(indexes.map(async (j) => (i === j ? undefined : TcpProxy.start()))),
      ),
    );
    const members = indexes.map((i) => ({
      name: `node${i + 1}`,
      dataDir: join(root, `node${i + 1}`),
      env: {
        LIKES_NODE_NAME: `node${i + 1}`,
        LIKES_HTTP_PORT: "0",
        LIKES_ADMIN_PORT: "0",
        LIKES_PEER_PORT: "0",
        LIKES_PEERS: (proxies[i] ?? [])
          .filter((p): p is TcpProxy => p !== undefined)
          .map((p) => `127.0.0.1:${p.port}`)
          .join(","),
        LIKES_CLUSTER_SECRET: TEST_SECRET,
        ...env,
        ...perNode(i),
      },
      process: undefined,
    }));
    const cluster = new TestCluster(members, proxies, root);
    const started = await Promise.allSettled(members.map((_, i) => cluster.startNode(i)));
    const failed = started.find((s) => s.status === "rejected");
    if (failed) {
      // The nodes that did start, and the proxies, go with the failed start.
      await cluster.stop();
      throw failed.reason;
    }
    return cluster;
  }

  node(i: number): NodeProcess {
    const p = this.members[i]?.process;
    if (!p) throw new Error(`node ${i} is not running`);
    return p;
  }

  get urls(): string[] {
    return this.members.map((m) => (m.process ? m.process.url : ""));
  }

  async startNode(i: number): Promise<NodeProcess> {
    const member = this.members[i] as Member;
    member.process = await NodeProcess.start({ ...member.env, LIKES_DATA_DIR: member.dataDir });
    const peerPort = member.process.ports?.peer;
    if (!peerPort) throw new Error(`${member.name} logged no peer port`);
    for (const row of this.proxies) if (row[i]) row[i].target = peerPort;
    return member.process;
  }

  async kill(i: number, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const member = this.members[i] as Member;
    await member.process?.kill(signal);
    member.process = undefined;
  }

  wipe(i: number): void {
    rmSync((this.members[i] as Member).dataDir, { recursive: true, force: true });
  }

  /** Cuts node i off from every other node, in both directions. */
  isolate(i: number): void {
    this.eachLinkOf(i, (p) => p.partition());
  }

  heal(i: number): void {
    this.eachLinkOf(i, (p) => p.heal());
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map(async (m) => m.process?.kill("SIGKILL")));
    await Promise.all(this.proxies.flat().map(async (p) => p?.close()));
    rmSync(this.root, { recursive: true, force: true });
  }

  private eachLinkOf(i: number, act: (proxy: TcpProxy) => void): void {
    this.proxies.forEach((row, from) =>
      row.forEach((proxy, to) => {
        if (proxy && (from === i || to === i)) act(proxy);
      }),
    );
  }
}

export async function clusterView(
  adminUrl: string,
): Promise<{ origin: string; vv: Record<string, number> }> {
  const res = await fetch(`${adminUrl}/cluster`);
  return (await res.json()) as { origin: string; vv: Record<string, number> };
}

/** Waits until every node has exchanged with each of its peers (greetings and start-up retries done). */
export async function allUp(c: TestCluster): Promise<NodeProcess[]> {
  const nodes = c.members.map((_, i) => c.node(i));
  await waitFor("every node to see every peer up", async () => {
    for (const node of nodes) {
      const view = (await (await fetch(`${node.adminUrl}/cluster`)).json()) as {
        peers: { node: string | null; up: boolean | null }[];
      };
      if (view.peers.length !== nodes.length - 1) return false;
      if (!view.peers.every((p) => p.up === true && p.node !== null)) return false;
    }
    return true;
  });
  return nodes;
}
