// The load generator as users run it: the built CLI (dist/load/main.js) against a real 3-node
// cluster on 127.0.0.1. Its summary's 201/200 counts are what the nodes themselves counted.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Summary } from "../../src/load/stats.js";
import { TestCluster } from "../support/cluster.js";
import { waitFor } from "../support/wait.js";

const LOAD = fileURLToPath(new URL("../../dist/load/main.js", import.meta.url));

function runLoad(
  args: string[],
  /** Called with the stderr so far on each chunk; may signal the child. */
  onStderr: (stderr: string, child: ChildProcess) => void = () => {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [LOAD, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      onStderr(stderr, child);
    });
    // Bounded: the run's own duration, its request timeout, and a margin.
    const killer = setTimeout(() => child.kill("SIGKILL"), 40_000);
    child.once("error", reject);
    // "close", not "exit": stdout and stderr are read to their ends.
    child.once("close", (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** likes_accepted_total by result, summed over the nodes' admin /metrics. */
async function acceptedOnNodes(c: TestCluster): Promise<{ new: number; duplicate: number }> {
  const sum = { new: 0, duplicate: 0 };
  for (const m of c.members) {
    const text = await (await fetch(`${m.process?.adminUrl}/metrics`)).text();
    for (const result of ["new", "duplicate"] as const) {
      const line = new RegExp(`^likes_accepted_total\\{result="${result}"\\} (\\d+)`, "m").exec(
        text,
      );
      if (!line) throw new Error(`${m.name}: no likes_accepted_total{result="${result}"}`);
      sum[result] += Number(line[1]);
    }
  }
  return sum;
}

describe("the load generator against a real 3-node cluster", () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await TestCluster.start(3);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it("counts the same new likes and repeats as the nodes' likes_accepted_total", async () => {
    const before = await acceptedOnNodes(cluster);
    expect(before).toEqual({ new: 0, duplicate: 0 });
    // Few posts and users, so that repeats (200, new:false) come within 3 s.
    const { code, stdout, stderr } = await runLoad([
      ...cluster.urls.flatMap((u) => ["--url", u]),
      "--rate=200",
      "--duration=3s",
      "--posts=20",
      "--users=40",
      "--reads=0.2",
      "--timeout=20s",
      "--json",
    ]);
    expect(code, stderr).toBe(0);
    const summary = JSON.parse(stdout) as Summary;
    // Progress and messages go to stderr, the JSON alone to stdout.
    expect(stderr).toContain("is node1");
    expect(summary.urls).toEqual(cluster.urls);
    expect(summary.offered).toBe(600);
    expect(summary.sent + summary.dropped).toBe(600);
    // An error leaves unknown whether the node took the like: the comparison needs none.
    expect(summary.errors, stderr).toEqual({ total: 0, kinds: {} });
    expect(summary.unanswered).toBe(0);
    expect(summary.answered).toBe(summary.sent);
    expect(summary.likes.new).toBeGreaterThan(0);
    expect(summary.likes.repeat).toBeGreaterThan(0);
    expect(summary.likes.other).toBe(0);
    expect(summary.reads.total).toBeGreaterThan(0);
    expect(summary.likes.new + summary.likes.repeat + summary.reads.total).toBe(summary.answered);
    expect(summary.status["201"]).toBe(summary.likes.new);
    expect(summary.latencyMs.p50).toBeGreaterThan(0);

    // Every answer is in before the CLI prints, so the nodes' counters agree exactly; wait
    // with a deadline in case a scrape races the last commit's counter update.
    const want = { new: summary.likes.new, duplicate: summary.likes.repeat };
    await waitFor(
      `the nodes' likes_accepted_total to be ${JSON.stringify(want)}`,
      async () => {
        const got = await acceptedOnNodes(cluster);
        if (got.new > want.new || got.duplicate > want.duplicate)
          throw new Error(`the nodes counted more: ${JSON.stringify(got)}`);
        return got.new === want.new && got.duplicate === want.duplicate;
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    );
  });

  it("runs until Ctrl-C, then waits for the answers in flight and prints the summary", async () => {
    let interrupted = false;
    const { code, stdout, stderr } = await runLoad(
      [`--url=${cluster.urls[0]}`, "--rate=100", "--duration=0", "--progress=200ms", "--json"],
      (err, child) => {
        // SIGINT (what Ctrl-C sends) once a progress line shows answers.
        if (!interrupted && /2xx [1-9]/.test(err)) {
          interrupted = true;
          child.kill("SIGINT");
        }
      },
    );
    expect(code, stderr).toBe(0);
    expect(interrupted).toBe(true);
    const summary = JSON.parse(stdout) as Summary;
    expect(summary.answered).toBeGreaterThan(0);
    expect(summary.answered + summary.errors.total).toBe(summary.sent);
    expect(summary.durationSeconds).toBeLessThan(30);
  });

  it("exits 1 with a clear message when no node answers", async () => {
    const { code, stderr, stdout } = await runLoad([
      "--url=http://127.0.0.1:1",
      "--duration=1s",
      "--probe-timeout=1s",
    ]);
    expect(code).toBe(1);
    expect(stdout).toContain("http://127.0.0.1:1 does not answer (ECONNREFUSED)");
    expect(stderr).toContain("no node answers GET / at http://127.0.0.1:1");
  });

  it("exits 2 on a bad rate, naming the option", async () => {
    const { code, stderr } = await runLoad(["--rate=-5"]);
    expect(code).toBe(2);
    expect(stderr).toContain("--rate: -5 is out of range");
  });
});
