// Helpers for the static checks of observability/ (and the chart files it shares) and for the end-to-end check that every
// panel query returns series against a real cluster (panelQueries, prometheusDevConfig).
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const OBSERVABILITY_DIR = join(REPO_ROOT, "observability");
/** The files Kubernetes (the Helm chart) and the compose stack share: one copy, in the chart. */
export const CHART_FILES_DIR = join(REPO_ROOT, "k8s", "chart", "likes", "files");
export const DASHBOARDS_DIR = join(CHART_FILES_DIR, "grafana", "dashboards");
export const DATASOURCES_DIR = join(CHART_FILES_DIR, "grafana", "provisioning", "datasources");

export type MetricType = "counter" | "gauge" | "histogram";

/**
 * Every metric a node exports (README, "Observability"), histograms without their suffixes. The
 * likes_* and http_* names are the dashboard contract; the rest are prom-client's default metrics.
 */
export const EXPORTED_METRICS: Readonly<Record<string, MetricType>> = Object.freeze({
  likes_requests_total: "counter",
  http_request_duration_seconds: "histogram",
  likes_accepted_total: "counter",
  likes_set_size: "gauge",
  likes_origins: "gauge",
  likes_origins_max: "gauge",
  likes_replication_lag_seconds: "histogram",
  likes_convergence_seconds: "histogram",
  likes_replication_pending: "gauge",
  likes_peer_up: "gauge",
  likes_peer_clock_skew_seconds: "gauge",
  likes_peer_link_unanswered_bytes: "gauge",
  // Only with LIKES_FAULTS=enabled: the dashboards' fault annotation.
  likes_fault_active: "gauge",
  likes_gossip_messages_total: "counter",
  likes_gossip_bytes_total: "counter",
  likes_store_commit_seconds: "histogram",
  likes_store_wal_bytes: "gauge",
  likes_store_wal_restarts_total: "counter",
  likes_store_wal_restart_seconds_total: "counter",
  likes_snapshots_total: "counter",
  likes_snapshot_bytes_total: "counter",
  likes_snapshot_duration_seconds: "histogram",
  process_cpu_user_seconds_total: "counter",
  process_cpu_system_seconds_total: "counter",
  process_cpu_seconds_total: "counter",
  process_start_time_seconds: "gauge",
  process_resident_memory_bytes: "gauge",
  process_virtual_memory_bytes: "gauge",
  process_heap_bytes: "gauge",
  process_open_fds: "gauge",
  process_max_fds: "gauge",
  nodejs_eventloop_lag_seconds: "gauge",
  nodejs_eventloop_lag_min_seconds: "gauge",
  nodejs_eventloop_lag_max_seconds: "gauge",
  nodejs_eventloop_lag_mean_seconds: "gauge",
  nodejs_eventloop_lag_stddev_seconds: "gauge",
  nodejs_eventloop_lag_p50_seconds: "gauge",
  nodejs_eventloop_lag_p90_seconds: "gauge",
  nodejs_eventloop_lag_p99_seconds: "gauge",
  nodejs_active_resources: "gauge",
  nodejs_active_resources_total: "gauge",
  nodejs_active_handles: "gauge",
  nodejs_active_handles_total: "gauge",
  nodejs_active_requests: "gauge",
  nodejs_active_requests_total: "gauge",
  nodejs_heap_size_total_bytes: "gauge",
  nodejs_heap_size_used_bytes: "gauge",
  nodejs_external_memory_bytes: "gauge",
  nodejs_heap_space_size_total_bytes: "gauge",
  nodejs_heap_space_size_used_bytes: "gauge",
  nodejs_heap_space_size_available_bytes: "gauge",
  nodejs_version_info: "gauge",
  nodejs_gc_duration_seconds: "histogram",
});

export interface DatasourceRef {
  type?: string;
  uid?: string;
}

export interface Target {
  refId?: string;
  expr?: string;
  datasource?: DatasourceRef;
  [key: string]: unknown;
}

export interface Panel {
  id?: number;
  type?: string;
  title?: string;
  datasource?: DatasourceRef | null;
  targets?: Target[];
  panels?: Panel[];
  gridPos?: { h: number; w: number; x: number; y: number };
  [key: string]: unknown;
}

export interface Dashboard {
  uid?: string;
  title?: string;
  schemaVersion?: number;
  panels?: Panel[];
  annotations?: { list?: { name?: string; expr?: string; [key: string]: unknown }[] };
  [key: string]: unknown;
}

export interface LoadedDashboard {
  file: string;
  dashboard: Dashboard;
}

export interface PanelInfo {
  dashboardUid: string;
  panel: Panel;
  id: number | undefined;
  title: string;
  type: string;
  datasourceUid: string | undefined;
  targets: { refId: string; expr: string; datasourceUid: string | undefined }[];
}

export interface PanelQuery {
  dashboardUid: string;
  panelTitle: string;
  refId: string;
  expr: string;
}

export interface ProvisionedDatasource {
  name: string;
  type: string;
  uid: string;
  url?: string;
  jsonData?: Record<string, unknown>;
}

export function loadDashboards(dir: string = DASHBOARDS_DIR): LoadedDashboard[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => {
      const file = join(dir, f);
      return { file, dashboard: JSON.parse(readFileSync(file, "utf8")) as Dashboard };
    });
}

/** Every panel, rows flattened (a collapsed row keeps its panels inside it). Rows excluded. */
export function listPanels(dashboard: Dashboard): PanelInfo[] {
  const out: PanelInfo[] = [];
  const visit = (panels: Panel[]): void => {
    for (const panel of panels) {
      if (panel.panels?.length) visit(panel.panels);
      if (panel.type === "row") continue;
      const panelUid = panel.datasource?.uid;
      out.push({
        dashboardUid: dashboard.uid ?? "",
        panel,
        id: panel.id,
        title: panel.title ?? "",
        type: panel.type ?? "",
        datasourceUid: panelUid,
        targets: (panel.targets ?? []).map((t) => ({
          refId: t.refId ?? "",
          expr: t.expr ?? "",
          datasourceUid: t.datasource?.uid ?? panelUid,
        })),
      });
    }
  };
  visit(dashboard.panels ?? []);
  return out;
}

/** Every panel id of a dashboard, rows included: Grafana needs them unique. */
export function allPanelIds(dashboard: Dashboard): (number | undefined)[] {
  const ids: (number | undefined)[] = [];
  const visit = (panels: Panel[]): void => {
    for (const p of panels) {
      ids.push(p.id);
      visit(p.panels ?? []);
    }
  };
  visit(dashboard.panels ?? []);
  return ids;
}

/**
 * Every PromQL query of every dashboard, its Prometheus annotations included (as the panel
 * "annotation: <name>"), for running them against a real Prometheus.
 */
export function panelQueries(dir: string = DASHBOARDS_DIR): PanelQuery[] {
  return loadDashboards(dir).flatMap(({ dashboard }) => [
    ...listPanels(dashboard).flatMap((p) =>
      p.targets
        .filter((t) => t.expr !== "")
        .map((t) => ({
          dashboardUid: p.dashboardUid,
          panelTitle: p.title,
          refId: t.refId,
          expr: t.expr,
        })),
    ),
    ...(dashboard.annotations?.list ?? [])
      .filter((a) => typeof a.expr === "string" && a.expr !== "")
      .map((a) => ({
        dashboardUid: dashboard.uid ?? "",
        panelTitle: `annotation: ${a.name ?? ""}`,
        refId: "annotation",
        expr: a.expr as string,
      })),
  ]);
}

export function loadDatasources(dir: string = DATASOURCES_DIR): ProvisionedDatasource[] {
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .flatMap((f) => {
      const doc = parseYaml(readFileSync(join(dir, f), "utf8")) as {
        datasources?: ProvisionedDatasource[];
      } | null;
      return doc?.datasources ?? [];
    });
}

/**
 * The laptop scrape config rewritten for a Prometheus running on the host itself (as the
 * end-to-end test does): targets on `host`, a shorter scrape interval.
 */
export function prometheusDevConfig(host = "127.0.0.1", scrapeInterval = "1s"): string {
  const text = readFileSync(join(OBSERVABILITY_DIR, "prometheus", "prometheus.dev.yml"), "utf8");
  return text
    .replaceAll("host.docker.internal", host)
    .replace(/scrape_interval: \S+/, `scrape_interval: ${scrapeInterval}`)
    .replace(/scrape_timeout: \S+/, `scrape_timeout: ${scrapeInterval}`);
}

/** Grafana template variables ($node, ${x}, $__rate_interval) in a query. */
export function grafanaVariablesIn(expr: string): string[] {
  return expr.match(/\$(?:\{[^}]*\}|\w+)/g) ?? [];
}

// --- PromQL metric names ---------------------------------------------------------------

type Token = { kind: "ident" | "string" | "number" | "punct"; text: string };

// Words that never name a metric when they stand alone.
const KEYWORDS = new Set(["and", "or", "unless", "atan2", "bool", "offset", "inf", "nan"]);
// Modifiers followed by a parenthesised label list.
const LABEL_LISTS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right"]);
const NUMBER =
  /^(?:0[xX][0-9a-fA-F]+|(?:\d+(?:ms|s|m|h|d|w|y))+(?![\w.])|(?:\d*\.\d+|\d+\.?)(?:[eE][+-]?\d+)?)/;
const IDENT = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const OPERATORS = ["=~", "!~", "!=", "==", ">=", "<="];

function tokenize(expr: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < expr.length) {
    const c = expr[i] ?? "";
    if (/\s/.test(c)) {
      i++;
    } else if (c === "#") {
      while (i < expr.length && expr[i] !== "\n") i++;
    } else if (c === '"' || c === "'" || c === "`") {
      let text = "";
      i++;
      while (i < expr.length && expr[i] !== c) {
        if (expr[i] === "\\" && c !== "`") i++;
        text += expr[i] ?? "";
        i++;
      }
      i++;
      tokens.push({ kind: "string", text });
    } else {
      const rest = expr.slice(i);
      const number = NUMBER.exec(rest);
      const ident = number ? null : IDENT.exec(rest);
      const op = OPERATORS.find((o) => rest.startsWith(o));
      const text = number?.[0] ?? ident?.[0] ?? op ?? c;
      tokens.push({ kind: number ? "number" : ident ? "ident" : "punct", text });
      i += text.length;
    }
  }
  return tokens;
}

/** Index of the token closing the bracket opened at `open`. */
function closing(tokens: Token[], open: number): number {
  const pairs: Record<string, string> = { "(": ")", "[": "]", "{": "}" };
  const opener = tokens[open]?.text ?? "";
  const closer = pairs[opener];
  let depth = 0;
  for (let j = open; j < tokens.length; j++) {
    const t = tokens[j];
    if (t?.kind !== "punct") continue;
    if (t.text === opener) depth++;
    if (t.text === closer && --depth === 0) return j;
  }
  return tokens.length - 1;
}

function histogramBase(name: string): string {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    const base = name.slice(0, -suffix.length);
    if (name.endsWith(suffix) && EXPORTED_METRICS[base] === "histogram") return base;
  }
  return name;
}

/**
 * The metric names a PromQL expression selects, sorted, with histogram series
 * (`x_bucket`, `x_sum`, `x_count`) mapped back to `x`.
 */
export function metricNamesIn(expr: string): string[] {
  const tokens = tokenize(expr);
  const names = new Set<string>();
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i];
    if (!tok) continue;
    const next = tokens[i + 1];
    if (tok.kind === "punct" && tok.text === "{") {
      const end = closing(tokens, i);
      for (let j = i + 1; j < end; j++) {
        const [prev, t, op, value] = [tokens[j - 1], tokens[j], tokens[j + 1], tokens[j + 2]];
        if (t?.text === "__name__" && t.kind === "ident" && op?.text === "=") {
          if (value?.kind === "string") names.add(value.text);
        }
        // Prometheus 3 quoted metric name: {"my.metric", label="x"}
        const afterOpen = prev?.text === "{" || prev?.text === ",";
        const beforeClose = op?.text === "," || op?.text === "}";
        if (t?.kind === "string" && afterOpen && beforeClose) names.add(t.text);
      }
      i = end;
    } else if (tok.kind === "punct" && tok.text === "[") {
      i = closing(tokens, i);
    } else if (tok.kind === "ident") {
      const word = tok.text.toLowerCase();
      const nextWord = next?.kind === "ident" ? next.text.toLowerCase() : "";
      if (LABEL_LISTS.has(word)) {
        if (next?.text === "(") i = closing(tokens, i + 1);
      } else if (
        next?.text !== "(" && // a function or aggregation call
        nextWord !== "by" && // an aggregation written `sum by (x) (...)`
        nextWord !== "without" &&
        !KEYWORDS.has(word)
      ) {
        names.add(tok.text);
      }
    }
  }
  return [...names]
    .map(histogramBase)
    .filter((n, k, all) => all.indexOf(n) === k)
    .sort();
}
