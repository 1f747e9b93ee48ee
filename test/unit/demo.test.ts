// The pure parts of the guided scenario (make demo): its options, what it reads of a node's
// /metrics, the lag quantile, the vector checks of convergence, the acknowledged likes it reads
// back, and the step lines.
import { readFileSync } from "node:fs";
import { createServer, type RequestListener } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { AckedLikes } from "../../src/load/acked-likes.js";
import {
  DemoError,
  clusterState,
  covers,
  identify,
  joinVectors,
  sameVector,
} from "../../src/load/demo-nodes.js";
import { DEMO_HELP, parseDemoOptions } from "../../src/load/demo-options.js";
import { StepRecorder } from "../../src/load/demo-steps.js";
import {
  histogramDelta,
  histogramQuantile,
  nodeMetricsOf,
  parseExposition,
  type NodeMetrics,
} from "../../src/load/node-metrics.js";
import { UsageError } from "../../src/load/options.js";
import { serversClosedAfterEach } from "../support/servers.js";

const EXPOSITION = `# HELP likes_set_size Distinct likes held by this node
# TYPE likes_set_size gauge
likes_set_size 120
likes_accepted_total{result="new"} 100
likes_accepted_total{result="duplicate"} 7
likes_replication_pending{peer="node2"} 0
likes_replication_pending{peer="node3"} 42
likes_peer_up{peer="node2"} 1
likes_peer_up{peer="node3"} 0
likes_fault_active{peer="*",kind="cut"} 1
likes_replication_lag_seconds_bucket{le="0.01",origin="node2",path="push"} 8
likes_replication_lag_seconds_bucket{le="0.1",origin="node2",path="push"} 10
likes_replication_lag_seconds_bucket{le="+Inf",origin="node2",path="push"} 10
likes_replication_lag_seconds_count{origin="node2",path="push"} 10
likes_replication_lag_seconds_bucket{le="0.01",origin="node3",path="sync"} 0
likes_replication_lag_seconds_bucket{le="0.1",origin="node3",path="sync"} 0
likes_replication_lag_seconds_bucket{le="+Inf",origin="node3",path="sync"} 10
likes_replication_lag_seconds_count{origin="node3",path="sync"} 10
likes_convergence_seconds_bucket{le="1"} 3
likes_convergence_seconds_bucket{le="+Inf"} 4
likes_convergence_seconds_count 4
`;

describe("what the demo reads of /metrics", () => {
  it("parses samples with labels, escapes and +Inf", () => {
    expect(parseExposition('a{x="q\\"b",le="+Inf"} 3\n# c\nb 1.5\n')).toEqual([
      { name: "a", labels: { x: 'q"b', le: "+Inf" }, value: 3 },
      { name: "b", labels: {}, value: 1.5 },
    ]);
  });

  it("sums the lag histogram over origins and paths and keeps the gauges per peer", () => {
    const m = nodeMetricsOf(EXPOSITION);
    expect(m.setSize).toBe(120);
    expect(m.accepted).toEqual({ new: 100, duplicate: 7 });
    expect([...m.pending]).toEqual([
      ["node2", 0],
      ["node3", 42],
    ]);
    expect(m.up.get("node3")).toBe(0);
    expect(m.faults).toEqual(["* cut"]);
    expect(m.applied).toEqual({ push: 10, sync: 10 });
    expect(m.convergence).toEqual({
      buckets: [
        [1, 3],
        [Infinity, 4],
      ],
      count: 4,
    });
    expect(m.lag).toEqual({
      buckets: [
        [0.01, 8],
        [0.1, 10],
        [Infinity, 20],
      ],
      count: 20,
    });
  });

  it("names the metric missing from a process that is not a likes node", () => {
    expect(() => nodeMetricsOf("up 1\n")).toThrow("no likes_set_size");
  });

  it("interpolates quantiles inside a bucket as histogram_quantile does", () => {
    const h = {
      buckets: [
        [0.01, 50],
        [0.1, 100],
        [Infinity, 100],
      ] as const,
      count: 100,
    };
    expect(histogramQuantile(0.5, h)).toBeCloseTo(0.01);
    expect(histogramQuantile(0.25, h)).toBeCloseTo(0.005);
    expect(histogramQuantile(0.75, h)).toBeCloseTo(0.055);
    // In the +Inf bucket: the highest finite bound.
    expect(histogramQuantile(0.99, nodeMetricsOf(EXPOSITION).lag)).toBe(0.1);
    expect(histogramQuantile(0.99, { buckets: [], count: 0 })).toBeUndefined();
  });

  it("takes what was observed between two reads", () => {
    const before = { buckets: [[0.1, 5] as const, [Infinity, 6] as const], count: 6 };
    const after = { buckets: [[0.1, 5] as const, [Infinity, 9] as const], count: 9 };
    expect(histogramDelta(before, after)).toEqual({
      buckets: [
        [0.1, 0],
        [Infinity, 3],
      ],
      count: 3,
    });
  });
});

describe("the convergence checks on version vectors", () => {
  it("joins vectors and checks that one covers another", () => {
    const target = joinVectors([
      { a: 3, b: 1 },
      { a: 1, c: 4 },
    ]);
    expect(target).toEqual({ a: 3, b: 1, c: 4 });
    expect(covers({ a: 3, b: 2, c: 4 }, target)).toBe(true);
    expect(covers({ a: 3, c: 4 }, target)).toBe(false);
    expect(sameVector({ a: 1, b: 2 }, { b: 2, a: 1 })).toBe(true);
    expect(sameVector({ a: 1 }, { a: 1, b: 1 })).toBe(false);
  });
});

describe("the nodes the demo is told to use", () => {
  const servers = serversClosedAfterEach();
  /** A stand-in server on 127.0.0.1 (a port the kernel picks); its base URL. */
  async function serve(handler: RequestListener): Promise<string> {
    const server = createServer(handler);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  /** A likes node as far as GET / and the admin /cluster go. */
  const node = (name: string) =>
    serve((req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(req.url === "/" ? { node: name } : { node: name, vv: {}, peers: [] }));
    });

  it("names an admin URL that answers 200 with something other than JSON, in one line", async () => {
    const url = await serve((_, res) => res.end("<html>a dashboard</html>"));
    const error = await clusterState({ name: "x", url, adminUrl: url }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DemoError);
    expect((error as Error).message).toBe(`GET ${url}/cluster: not a likes admin port (not JSON)`);
    // JSON, but not what a likes admin port answers.
    const other = await serve((_, res) => res.end('{"status":"ok"}'));
    await expect(clusterState({ name: "x", url: other, adminUrl: other })).rejects.toThrow(
      `GET ${other}/cluster: not a likes admin port`,
    );
  });

  it("refuses the same node at two URLs", async () => {
    const [a, b, c] = await Promise.all([node("node1"), node("node1"), node("node2")]);
    const urls = [a, b, c] as string[];
    await expect(identify(urls, urls)).rejects.toThrow(DemoError);
    await expect(identify(urls, urls)).rejects.toThrow(
      `node1 answers at both ${a} and ${b}: give each node once`,
    );
    expect((await identify([a, c] as string[], [a, c] as string[])).map((n) => n.name)).toEqual([
      "node1",
      "node2",
    ]);
  });
});

describe("the acknowledged likes", () => {
  it("keeps 200 and 201 answers as pairs to read back, and counts the rest apart", () => {
    const acked = new AckedLikes(2);
    const like = { post: "p", user: "u" };
    for (let i = 0; i < 5; i++) acked.sending();
    acked.answered(like, 0, { status: 201 });
    acked.answered(like, 1, { status: 200 });
    acked.answered({ post: "p", user: "v" }, 1, { status: 503 });
    acked.answered({ post: "q", user: "w" }, 0, { error: "timeout" });
    acked.answered({ post: "q", user: "x" }, 1, { status: 201 });
    expect([acked.sent, acked.acknowledged, acked.other, acked.errors]).toEqual([5, 3, 1, 1]);
    expect(acked.byTarget).toEqual([1, 2]);
    expect(acked.distinct).toBe(2);
    expect([...acked.posts()].map(([post, users]) => [post, [...users]])).toEqual([
      ["p", ["u"]],
      ["q", ["x"]],
    ]);
  });
});

describe("the step lines", () => {
  const metrics = (pending: number, setSize: number, lagCount: number): NodeMetrics => ({
    setSize,
    accepted: { new: 0, duplicate: 0 },
    pending: new Map([["node3", pending]]),
    up: new Map([["node3", pending > 0 ? 0 : 1]]),
    faults: [],
    lag: { buckets: [[0.01, lagCount] as const, [Infinity, lagCount] as const], count: lagCount },
    convergence: {
      buckets: [[1, lagCount] as const, [Infinity, lagCount] as const],
      count: lagCount,
    },
    applied: { push: lagCount },
  });

  it("shows pending links, lag over the last step, links down, and keeps the extremes", () => {
    const steps = new StepRecorder();
    steps.record(0, "steady", 0, [{ name: "node1", metrics: metrics(0, 10, 100) }]);
    const line = steps.record(1000, "cut", 50, [
      { name: "node1", metrics: metrics(30, 60, 140) },
      { name: "node2", metrics: undefined },
    ]);
    expect(line).toContain("cut");
    expect(line).toContain("acked 50");
    expect(line).toContain("set node1 60 node2 ?");
    expect(line).toContain("pending node1→node3 30");
    // 40 entries applied in the step, all under 10 ms.
    expect(line).toContain("(40 applied, 0 by sync)");
    expect(line).toContain("links down 1");
    steps.record(2000, "heal", 60, [{ name: "node1", metrics: metrics(5, 70, 150) }]);
    expect(steps.maxPendingTotal).toBe(30);
    expect(steps.maxPendingByPhase).toEqual({ steady: 0, cut: 30, heal: 5, drain: 0 });
    expect(steps.maxPendingByLink.get("node1→node3")).toBe(30);
    expect(steps.maxLinksDown).toBe(1);
    expect(steps.lagP99ByPhase().cut).toBeGreaterThan(0);
    expect(steps.lagP99ByPhase().drain).toBeNull();
    expect(steps.convergenceP99ByPhase().cut).toBeGreaterThan(0);
    expect(line).toContain("convergence p99");
  });
});

describe("the demo's options", () => {
  it("defaults to the make dev nodes and the 20 s cut of node3", () => {
    const o = parseDemoOptions([]);
    expect(o.urls).toEqual([
      "http://127.0.0.1:8080",
      "http://127.0.0.1:8081",
      "http://127.0.0.1:8082",
    ]);
    expect(o.adminUrls).toEqual([
      "http://127.0.0.1:9464",
      "http://127.0.0.1:9465",
      "http://127.0.0.1:9466",
    ]);
    expect(o.devNodes).toBe(true);
    expect(
      parseDemoOptions(["--url=http://a:1,http://b:1", "--admin-url=http://a:2,http://b:2"])
        .devNodes,
    ).toBe(false);
    expect([o.cluster, o.cutNode, o.rate, o.steadyMs, o.cutMs, o.afterMs]).toEqual([
      "auto",
      "node3",
      100,
      10_000,
      20_000,
      10_000,
    ]);
  });

  it("refuses what it cannot run, naming the option", () => {
    const bad: [string[], string][] = [
      [["--admin-url=http://a:1"], "--admin-url: needs --url"],
      [["--url=http://a:1"], "--admin-url: 0 given for 1"],
      [["--url=http://a:1", "--admin-url=http://a:2"], "--url: a cut needs at least 2 nodes"],
      [
        ["--cluster=start", "--url=http://a:1,http://b:1", "--admin-url=http://a:2,http://b:2"],
        "--cluster start",
      ],
      [["--cut-node=no de"], "--cut-node"],
      [["--nodes=1"], "--nodes: 1 is out of range"],
      [["--after=-1s"], '--after: "-1s" is not a duration'],
      [["--grafana=ftp://x"], "--grafana"],
      [["--bogus"], "bogus"],
      [["--url="], "--url: no URL given"],
      [["--url=http://a:1,http://b:1", "--admin-url=,"], "--admin-url: no URL given"],
      [
        ["--url=http://a:1,http://a:1/", "--admin-url=http://a:2,http://b:2"],
        "--url: http://a:1 is given twice",
      ],
      [
        ["--url=http://a:1,http://b:1", "--admin-url=http://a:2,http://a:2"],
        "--admin-url: http://a:2 is given twice",
      ],
      [["--rate=0x14"], '--rate: "0x14" is not a number'],
      [["--after=2h"], "--after: 2h is more than 1h"],
      // The cluster it starts is node1 … node<nodes>: refused before it starts anything.
      [["--cluster=start", "--nodes=2"], "--cut-node: node3 is not one of the nodes it starts"],
      [["--cluster=start", "--cut-node=likes-2"], "--cut-node: likes-2 is not one of"],
    ];
    for (const [args, message] of bad) {
      expect(() => parseDemoOptions(args), args.join(" ")).toThrow(UsageError);
      expect(() => parseDemoOptions(args), args.join(" ")).toThrow(message);
    }
  });

  it("reads --after 0 however it is written: the load stops once converged", () => {
    for (const zero of ["0", "0s", "0ms"])
      expect(parseDemoOptions([`--after=${zero}`]).afterMs, zero).toBe(0);
    expect(parseDemoOptions(["--cluster=start", "--nodes=2", "--cut-node=node2"]).cutNode).toBe(
      "node2",
    );
    expect(DEMO_HELP).toMatch(/--after <d> .*0 = stop once converged/s);
  });

  it("documents the exit status as the code decides it: converged, settled and lost = 0", () => {
    const readme = readFileSync(fileURLToPath(new URL("../../README.md", import.meta.url)), "utf8");
    const guided = readme.slice(readme.indexOf("## Guided scenario"), readme.indexOf("## Observ"));
    const doc = readFileSync(fileURLToPath(new URL("../../docs/demo.md", import.meta.url)), "utf8");
    const intro = doc.slice(0, doc.indexOf("| figure"));
    for (const [where, text] of [
      ["--help", DEMO_HELP.slice(DEMO_HELP.indexOf("Exit status"))],
      ["README Guided scenario", guided],
      ["docs/demo.md", intro],
    ] as const) {
      const flat = text.replace(/\s+/g, " ");
      expect(flat, where).toMatch(/converged/);
      expect(flat, where).toMatch(/settled/);
      expect(flat, where).toMatch(/every version vector equal and nothing pending/);
      expect(flat, where).toMatch(/lost = 0/);
    }
  });

  it("documents every option it accepts in --help and docs/demo.md, and accepts every one", () => {
    const optionLines = DEMO_HELP.split("\n").filter((line) => /^ {2}-/.test(line));
    const documented = optionLines.flatMap((line) =>
      [...line.matchAll(/--([a-z-]+)/g)].map((m) => m[1] ?? ""),
    );
    expect(documented.length).toBeGreaterThan(15);
    const doc = readFileSync(fileURLToPath(new URL("../../docs/demo.md", import.meta.url)), "utf8");
    for (const name of documented) {
      const value =
        name.endsWith("url") || ["grafana", "jaeger", "prometheus"].includes(name)
          ? "http://x"
          : name === "json" || name === "help"
            ? undefined
            : "1s";
      try {
        parseDemoOptions(value === undefined ? [`--${name}`] : [`--${name}`, value]);
      } catch (error) {
        expect(String(error), name).not.toContain("Unknown option");
      }
      if (name !== "help") expect(doc, `docs/demo.md names --${name}`).toContain(`\`--${name}\``);
    }
  });
});
