// The helm test Pod's script (k8s/chart/likes/files/replication-check.mjs), run here exactly as
// the Pod runs it (`node <script> name=url ...`) against a real local cluster of likes nodes:
// known to work, and to fail with a clear message, before it ever runs in a pod.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster } from "../support/cluster.js";
import { CHART, REPO_ROOT } from "./helm.js";

const SCRIPT = join(REPO_ROOT, CHART, "files/replication-check.mjs");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Async: the cluster's TCP proxies live in this process and must keep forwarding meanwhile. */
function check(args: string[]): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SCRIPT, ...args], {
      env: { PATH: process.env.PATH ?? "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
  });
}

/** A port on 127.0.0.1 that nothing listens on any more. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

describe("the helm test script against a local cluster", () => {
  let cluster: TestCluster;
  const nodes = () => cluster.members.map((m, i) => `${m.name}=${cluster.urls[i]}`);

  beforeAll(async () => {
    cluster = await TestCluster.start(3);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it("passes: a like posted to node1 is read back from node2 and node3", async () => {
    const run = await check(["--timeout-ms=30000", "--post=local-check", ...nodes()]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /^ok: node1 stored \{"post":"local-check","user":"check-[^"]+"\}; read back from node2 after \d+ ms, node3 after \d+ ms\n$/,
    );
    // The like it wrote is really on every node, as one like.
    for (const url of cluster.urls) {
      const res = await fetch(`${url}/likes?post=local-check`);
      expect(await res.json()).toEqual({ post: "local-check", likes: 1 });
    }
  });

  it("passes with one node, saying there was nothing to replicate to", async () => {
    const [first] = nodes();
    const run = await check(["--timeout-ms=30000", first ?? ""]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain("one node, nothing to replicate to");
  });

  it("fails at once when GET / names another node than the one asked", async () => {
    const [url1, url2] = cluster.urls;
    const run = await check(["--timeout-ms=30000", `node1=${url2}`, `node2=${url1}`]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `replication check FAILED: GET ${url2}/ names node "node2", want "node1"`,
    );
    expect(run.ms).toBeLessThan(10_000);
  });

  it("fails within its timeout when a node never receives the like", async () => {
    cluster.isolate(2);
    try {
      const run = await check(["--timeout-ms=3000", "--post=cut-off", ...nodes()]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(
        /replication check FAILED: like \{"post":"cut-off",[^}]*\} from node1 on node3: not within the timeout/,
      );
      // Bounded: the deadline, plus the start of node and some scheduling on a busy machine.
      expect(run.ms).toBeLessThan(3000 + 5000);
      // node2 did get it: the failure is node3's alone.
      const res = await fetch(`${cluster.urls[1]}/likes?post=cut-off`);
      expect(await res.json()).toEqual({ post: "cut-off", likes: 1 });
    } finally {
      cluster.heal(2);
    }
  });

  it("fails within its timeout when a node does not answer, with the error", async () => {
    const port = await closedPort();
    const run = await check([
      "--timeout-ms=1500",
      nodes()[0] ?? "",
      `node9=http://127.0.0.1:${port}`,
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`GET http://127.0.0.1:${port}/ (node9): not within the timeout`);
    expect(run.stderr).toContain("ECONNREFUSED");
  });

  it.each([
    [[], "no node given"],
    [["node1"], '"node1" is not name=url'],
    [["node1=ftp://127.0.0.1/"], "is not http(s)"],
    [["a=http://127.0.0.1:1", "a=http://127.0.0.1:2"], "a node name is given twice"],
    [["--timeout-ms=soon", "a=http://127.0.0.1:1"], "--timeout-ms must be a positive integer"],
  ])("refuses arguments %j with exit code 2", async (args, message) => {
    const run = await check(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
  });
});
