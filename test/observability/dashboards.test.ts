// The dashboards themselves: valid dashboard JSON, provisioned datasources, queries of metrics
// the service exports (metricNamesIn reads them out of PromQL), and what each dashboard shows.
import { describe, it, expect } from "vitest";
import {
  EXPORTED_METRICS,
  allPanelIds,
  grafanaVariablesIn,
  listPanels,
  loadDashboards,
  loadDatasources,
  metricNamesIn,
  panelQueries,
} from "./dashboards.js";

const dashboards = loadDashboards();
const panels = dashboards.flatMap(({ dashboard }) => listPanels(dashboard));
const queries = panelQueries();

describe("metricNamesIn", () => {
  it.each([
    ["likes_set_size", ["likes_set_size"]],
    ["max(likes_set_size) - min(likes_set_size)", ["likes_set_size"]],
    [
      "histogram_quantile(0.99, sum by (le, origin) (rate(likes_replication_lag_seconds_bucket[1m])))",
      ["likes_replication_lag_seconds"],
    ],
    ["sum(rate(likes_convergence_seconds_bucket[1m])) by (le)", ["likes_convergence_seconds"]],
    [
      'sum by (route) (rate(likes_requests_total{code=~"5..", route!="x"}[1m])) or sum by (route) (rate(likes_requests_total[1m])) * 0',
      ["likes_requests_total"],
    ],
    [
      "rate(nodejs_gc_duration_seconds_sum[5m]) / rate(nodejs_gc_duration_seconds_count[5m])",
      ["nodejs_gc_duration_seconds"],
    ],
    ["count(likes_peer_up == 0) or vector(0)", ["likes_peer_up"]],
    [
      "a_total unless on (node) group_left (x) b and ignoring(y) c offset 5m > bool 1e-3",
      ["a_total", "b", "c"],
    ],
    ['{__name__="likes_peer_up", peer="n2"}', ["likes_peer_up"]],
    ['{"likes.utf8.name", node="n1"}', ["likes.utf8.name"]],
    ['label_replace(up, "dst", "$1", "src", "(.*)")', ["up"]],
    ["sum without (instance) (x_bucket)", ["x_bucket"]],
    ["max_over_time(likes_set_size[1h30m:15s]) @ end()", ["likes_set_size"]],
    ["1 + 0x1F * Inf - NaN", []],
  ])("finds the metrics of %s", (expr, expected) => {
    expect(metricNamesIn(expr)).toEqual(expected);
  });
});

describe("dashboards", () => {
  it("are the two dashboards the stack ships, valid dashboard JSON", () => {
    expect(dashboards.map((d) => [d.dashboard.uid, d.dashboard.title])).toEqual([
      ["likes-convergence", "likes / convergence"],
      ["likes-service", "likes / service"],
    ]);
    for (const { file, dashboard } of dashboards) {
      expect(dashboard.schemaVersion, file).toBeGreaterThanOrEqual(39);
      expect(Array.isArray(dashboard.panels) && dashboard.panels.length > 0, file).toBe(true);
      expect(dashboard).toHaveProperty("time.from");
      expect(dashboard).toHaveProperty("templating.list");
      for (const p of listPanels(dashboard)) {
        const g = p.panel.gridPos;
        expect(typeof p.type === "string" && p.type !== "", `${file}: ${p.title}`).toBe(true);
        expect(p.title, file).not.toBe("");
        expect(g && g.w > 0 && g.h > 0 && g.x >= 0 && g.x + g.w <= 24, `${p.title} gridPos`).toBe(
          true,
        );
      }
    }
  });

  it("give every panel a unique id", () => {
    for (const { dashboard } of dashboards) {
      const ids = allPanelIds(dashboard);
      expect(ids.every((id) => Number.isInteger(id))).toBe(true);
      expect(new Set(ids).size).toBe(ids.length);
    }
  });

  it("give every panel an explicit datasource and PromQL targets", () => {
    for (const p of panels) {
      expect(p.panel.datasource, p.title).toEqual({
        type: expect.any(String) as string,
        uid: expect.any(String) as string,
      });
      expect(p.targets.length, p.title).toBeGreaterThan(0);
      expect(new Set(p.targets.map((t) => t.refId)).size, p.title).toBe(p.targets.length);
      for (const t of p.targets) expect(t.expr.trim(), `${p.title} ${t.refId}`).not.toBe("");
    }
  });

  it("use only datasources that Grafana provisioning defines", () => {
    const provisioned = new Map(loadDatasources().map((d) => [d.uid, d.type]));
    for (const p of panels) {
      const refs = [p.panel.datasource, ...(p.panel.targets ?? []).map((t) => t.datasource)];
      for (const ref of refs.filter((r) => r != null)) {
        expect(provisioned.has(ref.uid ?? ""), `${p.title}: uid ${ref.uid}`).toBe(true);
        expect(provisioned.get(ref.uid ?? ""), `${p.title}: type of ${ref.uid}`).toBe(ref.type);
      }
    }
  });

  it("query only metrics that the service exports", () => {
    const unknown = queries.flatMap((q) =>
      metricNamesIn(q.expr)
        .filter((name) => !(name in EXPORTED_METRICS))
        .map((name) => `${q.dashboardUid} / ${q.panelTitle} / ${q.refId}: ${name}`),
    );
    expect(unknown).toEqual([]);
    for (const q of queries) expect(metricNamesIn(q.expr), q.expr).not.toEqual([]);
  });

  it("use no Grafana variables, so every query runs in Prometheus as written", () => {
    expect(queries.filter((q) => grafanaVariablesIn(q.expr).length > 0)).toEqual([]);
  });

  it("use rate windows of at least 1m, wide enough for two scrapes at 5s", () => {
    for (const q of queries) {
      for (const [, n, unit] of q.expr.matchAll(/\[(\d+)([smh])[^\]]*\]/g)) {
        const seconds = Number(n) * { s: 1, m: 60, h: 3600 }[unit as "s" | "m" | "h"];
        expect(seconds, q.expr).toBeGreaterThanOrEqual(60);
      }
    }
  });

  it("show convergence as a heatmap with exemplars", () => {
    const heatmap = panels.find(
      (p) => p.dashboardUid === "likes-convergence" && p.type === "heatmap",
    );
    expect(heatmap?.panel.targets?.[0]).toMatchObject({
      expr: "sum(rate(likes_convergence_seconds_bucket[1m])) by (le)",
      format: "heatmap",
      exemplar: true,
    });
  });

  it("cover what the issue asks of each dashboard", () => {
    const exprsOf = (uid: string): string[] =>
      queries.filter((q) => q.dashboardUid === uid).map((q) => q.expr);
    const metricsOf = (uid: string): Set<string> => new Set(exprsOf(uid).flatMap(metricNamesIn));
    expect([...metricsOf("likes-convergence")]).toEqual(
      expect.arrayContaining([
        "likes_replication_lag_seconds",
        "likes_convergence_seconds",
        "likes_replication_pending",
        "likes_peer_up",
        "likes_set_size",
        "likes_gossip_messages_total",
        "likes_gossip_bytes_total",
      ]),
    );
    expect(exprsOf("likes-convergence")).toContain("max(likes_set_size) - min(likes_set_size)");
    for (const quantile of ["0.5", "0.95", "0.99"]) {
      expect(exprsOf("likes-convergence")).toContain(
        `histogram_quantile(${quantile}, sum by (le, origin, path) (rate(likes_replication_lag_seconds_bucket[1m])))`,
      );
    }
    expect([...metricsOf("likes-service")]).toEqual(
      expect.arrayContaining([
        "likes_requests_total",
        "http_request_duration_seconds",
        "likes_store_commit_seconds",
        "nodejs_eventloop_lag_p99_seconds",
        "nodejs_heap_size_used_bytes",
        "nodejs_gc_duration_seconds",
      ]),
    );
  });
});
