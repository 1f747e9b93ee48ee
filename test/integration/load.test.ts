// The load generator as users run it: the built CLI (dist/load/main.js) against a real 3-node
// cluster on 127.0.0.1. Its summary's 201/200 counts are what the nodes themselves counted.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type RequestListener } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Summary } from "../../src/load/stats.js";
import { TestCluster } from "../support/cluster.js";
import { metricSample } from "../support/metrics.js";
import { serversClosedAfterEach } from "../support/servers.js";
import { waitFor } from "../support/wait.js";

const LOAD = fileURLToPath(new URL("../../dist/load/main.js", import.meta.url));
const ROOT = fileURLToPath(new URL("../..", import.meta.url));

function runLoad(
  args: string[],
  /** Called with the stderr so far on each chunk; may signal the child. */
  onStderr: (stderr: string, child: ChildProcess) => void = () => {},
  {
    onStdout = () => {},
    command = [process.execPath, LOAD],
  }: {
    /** Called with the stdout so far on each chunk. */
    onStdout?: (stdout: string, child: ChildProcess) => void;
    command?: string[];
  } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const [file = "", ...before] = command;
    const child = spawn(file, [...before, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      cwd: ROOT,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      onStdout(stdout, child);
    });
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
  for (const m of c.members)
    for (const result of ["new", "duplicate"] as const) {
      const n = await metricSample(m.process?.adminUrl ?? "", "likes_accepted_total", { result });
      if (n === undefined)
        throw new Error(`${m.name}: no likes_accepted_total{result="${result}"}`);
      sum[result] += n;
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

describe("the load generator against a stand-in node", () => {
  const servers = serversClosedAfterEach();

  /**
   * A stand-in likes node on 127.0.0.1 (a port the kernel picks): GET / names it; every other
   * request goes to `answer`, which may leave it unanswered. Its base URL, and the count of
   * the requests other than GET / it received.
   */
  async function standIn(
    answer: (res: Parameters<RequestListener>[1]) => void,
  ): Promise<{ url: string; received: () => number }> {
    let received = 0;
    const server = createServer((req, res) => {
      req.resume();
      if (req.method === "GET" && req.url === "/") {
        res.setHeader("content-type", "application/json");
        res.end('{"node":"stand-in"}');
        return;
      }
      received++;
      answer(res);
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return { url, received: () => received };
  }
  const answerAt = (delayMs: number) => (res: Parameters<RequestListener>[1]) => {
    const answer = () => {
      res.statusCode = 201;
      res.end('{"new":true}');
    };
    if (delayMs === 0) answer();
    else setTimeout(answer, delayMs);
  };
  const never = () => {};

  it("ends quietly when the reader of its stdout goes away (| head -1)", async () => {
    const { url } = await standIn(answerAt(0));
    let closed = false;
    const { code, stderr } = await runLoad(
      [`--url=${url}`, "--rate=20", "--duration=20s", "--progress=200ms"],
      undefined,
      {
        onStdout: (out, child) => {
          // What head -1 does: read one line, then close the pipe.
          if (!closed && out.includes("\n")) {
            closed = true;
            child.stdout?.destroy();
          }
        },
      },
    );
    expect(closed).toBe(true);
    expect(stderr).not.toContain("EPIPE");
    expect(stderr).not.toContain("Error");
    expect(code).toBe(1);
  });

  it("exits 3 when every request sent ended in an error", async () => {
    // The node answers its probe, then drops every like's connection unanswered.
    const node = await standIn((res) => res.socket?.destroy());
    const { code, stdout, stderr } = await runLoad([
      `--url=${node.url}`,
      "--rate=20",
      "--duration=1s",
      "--json",
    ]);
    expect(code, stderr).toBe(3);
    const summary = JSON.parse(stdout) as Summary;
    expect(summary.answered).toBe(0);
    expect(summary.errors.total).toBe(summary.sent);
    expect(stderr).toMatch(/load: no request was answered: \S+ 20\n/);
  });

  it("counts the requests a second Ctrl-C gives up on once, as unanswered", async () => {
    const node = await standIn(never);
    let child: ChildProcess | undefined;
    let second = false;
    const run = runLoad(
      [`--url=${node.url}`, "--rate=50", "--duration=0", "--timeout=10m", "--json"],
      (err, c) => {
        child = c;
        if (!second && err.includes("waiting up to 600s for")) {
          second = true;
          c.kill("SIGINT");
        }
      },
    );
    // Ctrl-C once some requests are in flight: it stops sending, then waits for them.
    await waitFor("requests in flight", () => node.received() >= 3 && child, {
      timeoutMs: 20_000,
    });
    child?.kill("SIGINT");
    const { code, stdout, stderr } = await run;
    expect(code, stderr).toBe(0);
    expect(second).toBe(true);
    const summary = JSON.parse(stdout) as Summary;
    expect(summary.sent).toBeGreaterThanOrEqual(3);
    expect(summary.answered).toBe(0);
    expect(summary.errors).toEqual({ total: 0, kinds: {} });
    expect(summary.unanswered).toBe(summary.sent);
  });

  it("stops waiting at the first Ctrl-C once --duration has ended the sending", async () => {
    const node = await standIn(never);
    let interrupted = false;
    const { code, stdout, stderr } = await runLoad(
      [`--url=${node.url}`, "--rate=20", "--duration=1s", "--timeout=10m", "--json"],
      (err, child) => {
        if (!interrupted && err.includes("(Ctrl-C: stop waiting)")) {
          interrupted = true;
          child.kill("SIGINT");
        }
      },
    );
    expect(interrupted).toBe(true);
    expect(code, stderr).toBe(0);
    const summary = JSON.parse(stdout) as Summary;
    expect([summary.offered, summary.sent, summary.unanswered]).toEqual([20, 20, 20]);
    expect(summary.errors.total).toBe(0);
  });

  it("gives the last progress line's offered rate over the sending time, as the summary", async () => {
    // Every answer 1 s late: the run ends about 1 s after the sending.
    const node = await standIn(answerAt(1000));
    const { code, stdout, stderr } = await runLoad([
      `--url=${node.url}`,
      "--rate=20",
      "--duration=2s",
      "--progress=500ms",
      "--json",
    ]);
    expect(code, stderr).toBe(0);
    const summary = JSON.parse(stdout) as Summary;
    expect([summary.offered, summary.answered]).toEqual([40, 40]);
    const lines = stderr.split("\n").filter((line) => /^\d+\.\ds offered /.test(line));
    const last = /^(\d+\.\d)s offered (\d+)\/s achieved (\d+)\/s/.exec(lines.at(-1) ?? "");
    expect(last, stderr).not.toBeNull();
    const [, elapsed, offered, achieved] = (last ?? []).map(Number);
    expect(elapsed).toBeGreaterThanOrEqual(2.9);
    expect(offered).toBe(Math.round(summary.offered / summary.durationSeconds));
    expect(achieved).toBe(Math.round(summary.answered / summary.durationSeconds));
  });

  it("prints the JSON alone on stdout through make load and npm run -s load", async () => {
    const node = await standIn(answerAt(0));
    const args = ["--rate=20", "--duration=1s", "--progress=200ms", "--json"];
    const runs = {
      // Without -s too: the recipe echoes nothing. MAKE=true skips the build (a sub-make): tsc
      // rewriting dist/ under the other tests' processes would race them.
      make: runLoad([`URLS=${node.url}`, `LOAD_ARGS=${args.join(" ")}`, "MAKE=true"], undefined, {
        command: ["make", "--no-print-directory", "load"],
      }),
      npm: runLoad([`--url=${node.url}`, ...args], undefined, {
        command: ["npm", "run", "-s", "load", "--"],
      }),
    };
    for (const [how, run] of Object.entries(runs)) {
      const { code, stdout, stderr } = await run;
      expect(code, `${how}: ${stderr}`).toBe(0);
      expect(stdout.trimStart().startsWith("{"), `${how}: ${stdout}`).toBe(true);
      expect((JSON.parse(stdout) as Summary).offered, how).toBe(20);
    }
  });
});
