// A local cluster for the scenario when none runs: the make dev layout (scripts/cluster.js) on
// 127.0.0.1 with LIKES_FAULTS=enabled, its data and logs in a temporary directory, stopped (and
// the directory removed) at the end. It spawns `node dist/main.js`; it imports nothing of it.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DEV_FIRST_ADMIN_PORT, DEV_FIRST_PEER_PORT } from "./demo-options.js";
import { DemoError, clusterState, type DemoNode } from "./demo-nodes.js";
import { DEV_FIRST_PORT } from "./options.js";

const MAIN = fileURLToPath(new URL("../main.js", import.meta.url));
const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 8000;

interface Member {
  readonly node: DemoNode;
  readonly child: ChildProcess;
  readonly log: string;
  exitCode: number | null | undefined;
}

export class LocalCluster {
  private constructor(
    readonly dir: string,
    private readonly members: Member[],
  ) {}

  get nodes(): DemoNode[] {
    return this.members.map((m) => m.node);
  }

  /**
   * Starts `count` nodes on the make dev ports and waits until each sees every peer up.
   * `starting` gets the cluster as soon as its nodes are spawned, before they are ready: what a
   * signal during the start must stop. Should the start fail, the nodes are stopped and their
   * directory kept for its logs (the error says where).
   */
  static async start(
    count: number,
    starting: (cluster: LocalCluster) => void = () => {},
  ): Promise<LocalCluster> {
    const dir = mkdtempSync(join(tmpdir(), "likes-demo-"));
    const secret = randomBytes(32).toString("hex");
    const members = Array.from({ length: count }, (_, i): Member => {
      const name = `node${i + 1}`;
      const peers = Array.from({ length: count }, (_, j) => j)
        .filter((j) => j !== i)
        .map((j) => `127.0.0.1:${DEV_FIRST_PEER_PORT + j}`);
      const log = join(dir, `${name}.log`);
      const out = createWriteStream(log);
      const child = spawn(process.execPath, [MAIN], {
        stdio: ["ignore", "pipe", "pipe"],
        env: {
          ...process.env,
          LIKES_NODE_NAME: name,
          LIKES_HOST: "127.0.0.1",
          LIKES_HTTP_PORT: String(DEV_FIRST_PORT + i),
          LIKES_PEER_PORT: String(DEV_FIRST_PEER_PORT + i),
          LIKES_ADMIN_PORT: String(DEV_FIRST_ADMIN_PORT + i),
          LIKES_PEERS: peers.join(","),
          LIKES_DATA_DIR: join(dir, name),
          LIKES_CLUSTER_SECRET: secret,
          LIKES_FAULTS: "enabled",
        },
      });
      child.stdout?.pipe(out);
      child.stderr?.pipe(out);
      const member: Member = {
        node: {
          name,
          url: `http://127.0.0.1:${DEV_FIRST_PORT + i}`,
          adminUrl: `http://127.0.0.1:${DEV_FIRST_ADMIN_PORT + i}`,
        },
        child,
        log,
        exitCode: undefined,
      };
      child.once("exit", (code) => (member.exitCode = code));
      return member;
    });
    const cluster = new LocalCluster(dir, members);
    // Should the demo end abruptly (an exception, a closed pipe on its stdout), its nodes end
    // with it: 'exit' handlers run synchronously, so a signal is all that can be sent (the
    // directory can go at once: a node's open files outlive their names).
    process.once("exit", () => {
      if (cluster.stopped) return;
      for (const m of members) if (m.exitCode === undefined) m.child.kill("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    });
    starting(cluster);
    try {
      await cluster.ready();
    } catch (error) {
      // Stopped while starting (a signal): the stop that was asked for decides about the
      // directory. Otherwise it is kept for the logs.
      if (cluster.stopped) throw new DemoError("stopped while starting");
      await cluster.stop(true);
      throw error;
    }
    return cluster;
  }

  private async ready(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (this.stopped) throw new DemoError("stopped while starting");
      for (const m of this.members)
        if (m.exitCode !== undefined)
          throw new DemoError(
            `${m.node.name} exited (code ${m.exitCode}) while starting: ${lastLines(m.log)} (logs kept in ${this.dir})`,
          );
      const states = await Promise.all(
        this.members.map((m) => clusterState(m.node).catch(() => undefined)),
      );
      if (
        states.every(
          (s) =>
            s !== undefined &&
            s.peers.length === this.members.length - 1 &&
            s.peers.every((p) => p.up === true),
        )
      )
        return;
      if (Date.now() > deadline)
        throw new DemoError(
          `the started nodes did not all see each other up within ${READY_TIMEOUT_MS / 1000}s (logs kept in ${this.dir})`,
        );
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  private stopping: Promise<void> | undefined;

  get stopped(): boolean {
    return this.stopping !== undefined;
  }

  /**
   * SIGTERM (graceful), SIGKILL past the deadline; removes the directory unless `keep`. The
   * first call decides: a start that failed keeps the directory for its logs, and the demo's
   * clean-up after it (a later call) leaves it there.
   */
  stop(keep = false): Promise<void> {
    this.stopping ??= this.stopMembers().then(() => {
      if (!keep) rmSync(this.dir, { recursive: true, force: true });
    });
    return this.stopping;
  }

  private async stopMembers(): Promise<void> {
    await Promise.all(
      this.members.map(
        (m) =>
          new Promise<void>((resolve) => {
            if (m.exitCode !== undefined) return resolve();
            const killer = setTimeout(() => m.child.kill("SIGKILL"), STOP_TIMEOUT_MS);
            m.child.once("exit", () => {
              clearTimeout(killer);
              resolve();
            });
            m.child.kill("SIGTERM");
          }),
      ),
    );
  }
}

function lastLines(file: string, n = 3): string {
  try {
    return readFileSync(file, "utf8").trim().split("\n").slice(-n).join(" | ");
  } catch {
    return "(no log)";
  }
}
