import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, stringify } from "yaml";
import { TestCluster } from "../support/cluster.js";
import { postLike } from "../support/process.js";
import { freePort } from "../support/tcp-proxy.js";
import { waitFor } from "../support/wait.js";
import {
  EXPORTED_METRICS,
  OBSERVABILITY_DIR,
  metricNamesIn,
  panelQueries,
} from "../observability/dashboards.js";

// CI installs Debian's prometheus; elsewhere this suite says so and is skipped.
const hasPrometheus = !spawnSync("prometheus", ["--version"], { stdio: "ignore" }).error;
if (!hasPrometheus && process.env.CI)
  throw new Error("CI must install prometheus (Debian package) for this suite");

/**
 * Prometheus on a free port of 127.0.0.1. Another process can take the port between picking
 * and binding (test files run in parallel); Prometheus then exits, and a new port is tried.
 */
async function startPrometheus(dir: string): Promise<{ prometheus: ChildProcess; api: string }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const api = `http://127.0.0.1:${port}`;
    const prometheus = spawn(
      "prometheus",
      [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, `data-${attempt}`)}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--enable-feature=exemplar-storage",
      ],
      { stdio: "ignore" },
    );
    let exited = false;
    prometheus.once("exit", () => (exited = true));
    let outcome: string;
    try {
      outcome = await waitFor(
        "prometheus to be ready (or to exit)",
        async () => (exited ? "exited" : (await fetch(`${api}/-/ready`)).ok && "ready"),
        { timeoutMs: 30_000 },
      );
    } catch (error) {
      // Never ready: not left running behind the failed suite.
      prometheus.kill("SIGKILL");
      throw error;
    }
    if (outcome === "ready") return { prometheus, api };
    if (attempt === 3) throw new Error("prometheus exited at start three times");
  }
}

interface Scrape {
  job_name: string;
  static_configs: { targets: string[]; labels: { node: string } }[];
  [key: string]: unknown;
}

describe.skipIf(!hasPrometheus)(
  "dashboards against a real Prometheus scraping a 3-node cluster",
  () => {
    let cluster: TestCluster;
    let prometheus: ChildProcess;
    let api: string;
    let dir: string;
    let traffic: NodeJS.Timeout | undefined;

    beforeAll(async () => {
      // Faults on, and one in force (a delay towards a node that does not exist, harmless), so
      // that the dashboards' fault annotation has a series to show.
      cluster = await TestCluster.start(3, { LIKES_FAULTS: "enabled" });
      const fault = await fetch(`${cluster.node(0).adminUrl}/faults/nobody`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ delay: { ms: 1 } }),
      });
      expect(fault.status).toBe(200);
      dir = mkdtempSync(join(tmpdir(), "likes-prometheus-"));
      // The shipped make-dev config, pointed at this cluster's admin ports, scraped every second.
      const config = parseYaml(
        readFileSync(join(OBSERVABILITY_DIR, "prometheus", "prometheus.dev.yml"), "utf8"),
      ) as {
        global: Record<string, string>;
        scrape_configs: Scrape[];
      };
      config.global.scrape_interval = "1s";
      config.global.scrape_timeout = "1s";
      config.global.evaluation_interval = "1s";
      const job = config.scrape_configs.find((j) => j.job_name === "likes") as Scrape;
      job.static_configs = cluster.members.map((m, i) => ({
        targets: [`127.0.0.1:${cluster.node(i).ports?.admin}`],
        labels: { node: m.name },
      }));
      writeFileSync(join(dir, "prometheus.yml"), stringify(config));
      ({ prometheus, api } = await startPrometheus(dir));
      // Steady traffic to every node, repeats and rejected requests included, so that every rate has data.
      let i = 0;
      traffic = setInterval(() => {
        const url = cluster.urls[i % 3]!;
        void postLike(url, `post-${i % 5}`, `user-${i % 40}`).catch(() => undefined);
        void fetch(`${url}/likes?post=post-${i % 5}`).catch(() => undefined);
        if (i % 10 === 0) void fetch(`${url}/likes`).catch(() => undefined);
        i++;
      }, 20);
    });

    afterAll(async () => {
      clearInterval(traffic);
      prometheus?.kill("SIGTERM");
      await cluster?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    async function query(expr: string): Promise<unknown[]> {
      const res = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(expr)}`);
      const body = (await res.json()) as {
        status: string;
        data?: { result: unknown[] };
        error?: string;
      };
      if (body.status !== "success") throw new Error(`${expr}: ${body.error}`);
      return body.data?.result ?? [];
    }

    it("returns at least one series for every PromQL expression of every dashboard panel", async () => {
      const queries = panelQueries();
      expect(queries.length).toBeGreaterThan(10);
      let empty: string[] = [];
      await waitFor(
        "every panel query to return a series",
        async () => {
          const results = await Promise.all(
            queries.map(async (q) => ({ q, n: (await query(q.expr)).length })),
          );
          empty = results
            .filter((r) => r.n === 0)
            .map((r) => `${r.q.dashboardUid} / ${r.q.panelTitle}: ${r.q.expr}`);
          return empty.length === 0;
        },
        { timeoutMs: 60_000, intervalMs: 1000 },
      ).catch((error: unknown) => {
        throw new Error(`${String(error)}\nempty:\n${empty.join("\n")}`);
      });
    });

    it("scrapes every metric the dashboards use, and the dashboards' list is what a node exports", async () => {
      const res = await fetch(`${cluster.node(0).adminUrl}/metrics`);
      const exported = new Set(
        [...(await res.text()).matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => m[1] as string),
      );
      for (const name of Object.keys(EXPORTED_METRICS)) expect(exported, name).toContain(name);
      // And the other way: none of the node's own metrics is missing from the list.
      for (const name of exported)
        if (/^(likes|http)_/.test(name)) expect(EXPORTED_METRICS, name).toHaveProperty(name);
      for (const q of panelQueries())
        for (const name of metricNamesIn(q.expr))
          expect(exported, `${name} in ${q.panelTitle}`).toContain(name);
    });
  },
);
