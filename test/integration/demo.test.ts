// The guided scenario as users run it: the built CLI (dist/load/demo.js, make demo) with short
// phases, against a real 3-node cluster on 127.0.0.1 with LIKES_FAULTS=enabled, and on a cluster
// it starts itself. Its --json summary is checked against what the nodes themselves say.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DemoSummary } from "../../src/load/demo-report.js";
import { TestCluster, clusterView } from "../support/cluster.js";
import { metricSum } from "../support/metrics.js";
import { waitFor } from "../support/wait.js";

const DEMO = fileURLToPath(new URL("../../dist/load/demo.js", import.meta.url));
const RUN_TIMEOUT_MS = 100_000;
/** A test's own deadline: one run and the checks after it. */
const TEST_TIMEOUT_MS = RUN_TIMEOUT_MS + 20_000;

function runDemo(
  args: string[],
  /** Called with the stdout and stderr so far on each chunk; may signal the child. */
  onOutput: (output: string, child: ChildProcess) => void = () => {},
): Promise<{ code: number | null; stdout: string; stderr: string; pid: number }> {
  return new Promise((resolve, reject) => {
    // A group of its own, so that a run killed at its deadline takes the nodes it started along.
    const child = spawn(process.execPath, [DEMO, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      onOutput(stdout + stderr, child);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      onOutput(stdout + stderr, child);
    });
    // Bounded: the phases, the convergence deadlines, the read-back and a margin (a shared
    // 2-core machine under load took 46 s for a run that starts its own cluster).
    const killer = setTimeout(
      () => process.kill(-(child.pid as number), "SIGKILL"),
      RUN_TIMEOUT_MS,
    );
    child.once("error", reject);
    // "close", not "exit": stdout and stderr are read to their ends.
    child.once("close", (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr, pid: child.pid ?? 0 });
    });
  });
}

const SHORT = [
  "--rate=200",
  "--steady=2s",
  "--cut=3s",
  "--after=1s",
  "--converge-timeout=20s",
  // Few posts and users: repeats (200, new:false) come too, and are acknowledged likes.
  "--posts=50",
  "--users=300",
  "--json",
];

/** What every run's summary must show, whichever cluster it ran on. */
function expectSound(s: DemoSummary, stderr: string): void {
  expect(s.lost, stderr).toBe(0);
  expect(s.nodes.map((n) => n.missing)).toEqual([0, 0, 0]);
  expect(s.readBack.checked).toBe(s.likes.distinct * 3);
  expect(s.likes.sent).toBe(s.likes.acknowledged + s.likes.errors + s.likes.other);
  expect(s.likes.other).toBe(0);
  expect(s.likes.acknowledged).toBeGreaterThan(500);
  expect(s.converged, stderr).toBe(true);
  expect(s.convergeMs).toBeLessThan(20_000);
  expect(s.settled, stderr).toBe(true);
  // The cut acted: the other nodes' entries waited for node3, and the 4 links to and from it
  // were down, while node1 and node2 kept each other up.
  expect(s.maxPending.byPhase.cut).toBeGreaterThan(0);
  expect(s.maxPending.byLink["node1→node3"]).toBeGreaterThan(0);
  expect(s.maxPending.byLink["node3→node1"]).toBeGreaterThan(0);
  expect(s.maxLinksDown).toBeGreaterThanOrEqual(4);
  expect(stderr).toContain("fault node3→* cut");
  // The traced likes: one on node1 before the cut, one on node3 during it. On a busy machine a
  // request may time out (status null, counted in errors); an answered one is a new like.
  expect(s.traces.map((t) => [t.phase, t.node])).toEqual([
    ["steady", "node1"],
    ["cut", "node3"],
  ]);
  for (const t of s.traces) expect([201, null]).toContain(t.status);
  expect(s.where.traces[1]).toBe(`http://localhost:16686/trace/${s.traces[1]?.traceId}`);
}

describe("make demo against a running 3-node cluster", () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await TestCluster.start(3, { LIKES_FAULTS: "enabled" });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it(
    "cuts node3 off, heals it, and reads every acknowledged like back from every node",
    async () => {
      const admins = cluster.members.map((_, i) => cluster.node(i).adminUrl);
      const { code, stdout, stderr } = await runDemo([
        "--cluster=running",
        ...cluster.urls.flatMap((u) => ["--url", u]),
        ...admins.flatMap((u) => ["--admin-url", u]),
        ...SHORT,
      ]);
      expect(code, stderr).toBe(0);
      const s = JSON.parse(stdout) as DemoSummary;
      expectSound(s, stderr);
      expect(s.startedCluster).toBe(false);
      expect(s.nodes.map((n) => n.url)).toEqual(cluster.urls);

      // What the nodes counted themselves: every acknowledged like was accepted by a node (a
      // like without an answer may have been too), and with no errors exactly those.
      let accepted = 0;
      for (const admin of admins) accepted += await metricSum(admin, "likes_accepted_total");
      expect(s.likes.acknowledged).toBeLessThanOrEqual(accepted);
      if (s.likes.errors === 0) expect(accepted).toBe(s.likes.acknowledged);
      // Healed and converged: no fault left, every vector equal, every node the same set.
      for (const admin of admins) expect(await metricSum(admin, "likes_fault_active")).toBe(0);
      const views = await Promise.all(admins.map((a) => clusterView(a)));
      for (const v of views) expect(v.vv).toEqual(views[0]?.vv);
      const sizes = await Promise.all(admins.map((a) => metricSum(a, "likes_set_size")));
      expect(new Set(sizes).size).toBe(1);
      expect(sizes[0]).toBeGreaterThanOrEqual(s.likes.distinct);
    },
    TEST_TIMEOUT_MS,
  );

  it("refuses a cluster without fault injection, before sending any load", async () => {
    const plain = await TestCluster.start(2);
    try {
      const { code, stderr } = await runDemo([
        "--cluster=running",
        ...plain.urls.flatMap((u) => ["--url", u]),
        ...plain.members.flatMap((_, i) => ["--admin-url", plain.node(i).adminUrl]),
        "--cut-node=node2",
      ]);
      expect(code).toBe(1);
      expect(stderr).toContain("node2 has fault injection off");
      expect(await metricSum(plain.node(0).adminUrl, "likes_accepted_total")).toBe(0);
    } finally {
      await plain.stop();
    }
  });
});

/** The demo's temporary directories (LocalCluster's), by name. */
function demoDirs(): string[] {
  return readdirSync(tmpdir()).filter((d) => d.startsWith("likes-demo-"));
}

/** Should a run leave anything behind (a failing test): its nodes and its new directories. */
function cleanUpAfter(pid: number, before: readonly string[]): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // The group is gone already: nothing left.
  }
  for (const d of demoDirs())
    if (!before.includes(d)) rmSync(join(tmpdir(), d), { recursive: true, force: true });
}

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

/** Whether every port of the make dev layout is free on 127.0.0.1 (another cluster may hold them). */
async function devPortsFree(): Promise<boolean> {
  const ports = [0, 1, 2].flatMap((i) => [8080 + i, 7946 + i, 9464 + i]);
  const results = await Promise.all(
    ports.map(
      (port) =>
        new Promise<boolean>((resolve) => {
          const server = createServer();
          server.once("error", () => resolve(false));
          server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
        }),
    ),
  );
  return results.every(Boolean);
}

describe("make demo on a fresh machine", () => {
  it(
    "starts its own cluster on the make dev ports, runs, and stops it",
    async (ctx) => {
      if (!(await devPortsFree())) ctx.skip("a make dev port is in use on this machine");
      const { code, stdout, stderr } = await runDemo(["--cluster=start", ...SHORT]);
      expect(code, stderr).toBe(0);
      const s = JSON.parse(stdout) as DemoSummary;
      expectSound(s, stderr);
      expect(s.startedCluster).toBe(true);
      expect(s.nodes.map((n) => n.adminUrl)).toEqual([
        "http://127.0.0.1:9464",
        "http://127.0.0.1:9465",
        "http://127.0.0.1:9466",
      ]);
      // Stopped at the end: the ports are free again.
      expect(await devPortsFree()).toBe(true);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "stops the nodes it is still starting on SIGTERM, and removes their directory",
    async (ctx) => {
      if (!(await devPortsFree())) ctx.skip("a make dev port is in use on this machine");
      const before = demoDirs();
      let signalled = false;
      const run = await runDemo(["--cluster=start", ...SHORT], (output, child) => {
        if (!signalled && output.includes("demo: starting 3 nodes")) {
          signalled = true;
          child.kill("SIGTERM");
        }
      });
      try {
        expect(signalled).toBe(true);
        expect(run.code, run.stderr).toBe(130);
        expect(run.stderr).toContain("demo: interrupted");
        await waitFor("the make dev ports to be free again", devPortsFree, { timeoutMs: 15_000 });
        expect(demoDirs().filter((d) => !before.includes(d))).toEqual([]);
      } finally {
        cleanUpAfter(run.pid, before);
      }
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "says where it kept the logs when a node it starts exits while starting",
    async (ctx) => {
      if (!(await devPortsFree())) ctx.skip("a make dev port is in use on this machine");
      const before = demoDirs();
      // node3's public port taken: node3 cannot start.
      const blocker = await listen(8082);
      let run: Awaited<ReturnType<typeof runDemo>> | undefined;
      try {
        run = await runDemo(["--cluster=start", ...SHORT]);
        expect(run.code, run.stderr).toBe(1);
        const kept = /node3 exited \(code \d+\) while starting: .*\(logs kept in (\S+)\)$/m.exec(
          run.stderr,
        );
        expect(kept, run.stderr).not.toBeNull();
        expect(existsSync(join(kept?.[1] ?? "", "node3.log"))).toBe(true);
      } finally {
        await new Promise((resolve) => blocker.close(resolve));
        if (run) cleanUpAfter(run.pid, before);
      }
      await waitFor("the make dev ports to be free again", devPortsFree, { timeoutMs: 15_000 });
    },
    TEST_TIMEOUT_MS,
  );

  it("refuses a --cut-node its own cluster would not have, before starting it", async (ctx) => {
    if (!(await devPortsFree())) ctx.skip("a make dev port is in use on this machine");
    // make demo NODES=2: the default --cut-node node3 of a 2-node cluster.
    const { code, stdout, stderr } = await runDemo(["--nodes=2", "--cut-node=node3"]);
    expect(code, stderr).toBe(2);
    expect(stderr).toContain("--cut-node: node3 is not one of the nodes it starts (node1, node2)");
    expect(stdout).not.toContain("starting");
  });

  it("exits 2 on bad options, naming the option", async () => {
    for (const [args, message] of [
      [["--cut=0"], "--cut: must be more than 0"],
      [["--rate=fast"], '--rate: "fast" is not a number'],
      [["--cluster=maybe"], '--cluster: "maybe" is not one of auto, running, start'],
      [["--url=http://127.0.0.1:1", "--url=http://127.0.0.1:2"], "--admin-url: 0 given for 2"],
      [["--steady=2h"], "--steady: 2h is more than 1h"],
    ] as const) {
      const { code, stderr } = await runDemo([...args]);
      expect(code, stderr).toBe(2);
      expect(stderr).toContain(message);
    }
  });

  it("exits 1 when the nodes it is told to use do not answer", async () => {
    const { code, stderr } = await runDemo([
      "--cluster=running",
      "--url=http://127.0.0.1:1,http://127.0.0.1:2",
      "--admin-url=http://127.0.0.1:3,http://127.0.0.1:4",
    ]);
    expect(code).toBe(1);
    expect(stderr).toContain("http://127.0.0.1:1 does not answer (ECONNREFUSED)");
    // auto, the default, starts a cluster only in place of the make dev nodes, never of the
    // nodes named with --url.
    const auto = await runDemo([
      "--url=http://127.0.0.1:1,http://127.0.0.1:2",
      "--admin-url=http://127.0.0.1:3,http://127.0.0.1:4",
    ]);
    expect(auto.code).toBe(1);
    expect(auto.stderr).toContain("http://127.0.0.1:1 does not answer (ECONNREFUSED)");
    expect(auto.stdout).not.toContain("starting");
  });
});
