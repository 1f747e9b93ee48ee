// The stack that serves the dashboards: Grafana provisioning, both Prometheus configs (and
// promtool on them and on every dashboard query), the Helm chart's observability manifests and
// the Compose stack for a laptop.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { describe, it, expect } from "vitest";
import { parse as parseYaml } from "yaml";
import { HELM, helmSkipNote, helmTemplate } from "../deploy/helm.js";
import { modelFor } from "../deploy/kube.js";
import {
  CHART_FILES_DIR,
  DASHBOARDS_DIR,
  OBSERVABILITY_DIR,
  loadDashboards,
  loadDatasources,
  panelQueries,
  prometheusDevConfig,
} from "./dashboards.js";

// The Kubernetes config is the chart's; the laptop one sits next to compose.yaml.
const PROMETHEUS_CONFIGS: Record<string, string> = {
  "prometheus.yml": join(CHART_FILES_DIR, "prometheus", "prometheus.yml"),
  "prometheus.dev.yml": join(OBSERVABILITY_DIR, "prometheus", "prometheus.dev.yml"),
};
const DASHBOARDS_MOUNT = "/etc/grafana/dashboards";

function installed(command: string, versionArg: string): boolean {
  return !spawnSync(command, [versionArg], { stdio: "ignore" }).error;
}
const hasPromtool = installed("promtool", "--version");
const skipNote = (tool: string, present: boolean): string =>
  present ? "" : ` (skipped: ${tool} is not installed)`;

function run(command: string, args: string[]): { status: number | null; output: string } {
  const r = spawnSync(command, args, { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

function readYaml<T>(...path: string[]): T {
  return parseYaml(readFileSync(join(OBSERVABILITY_DIR, ...path), "utf8")) as T;
}
function readChartFile<T>(...path: string[]): T {
  return parseYaml(readFileSync(join(CHART_FILES_DIR, ...path), "utf8")) as T;
}

const dashboards = loadDashboards();
const queries = panelQueries();

describe("grafana provisioning", () => {
  it("defines the Prometheus and Jaeger datasources with fixed uids", () => {
    expect(loadDatasources().map((d) => [d.uid, d.type, d.url])).toEqual([
      ["prometheus", "prometheus", "http://prometheus:9090"],
      ["jaeger", "jaeger", "http://jaeger:16686"],
    ]);
  });

  it("links trace_id exemplars from Prometheus to Jaeger", () => {
    const prometheus = loadDatasources().find((d) => d.uid === "prometheus");
    expect(prometheus?.jsonData?.exemplarTraceIdDestinations).toContainEqual(
      expect.objectContaining({ name: "trace_id", datasourceUid: "jaeger" }),
    );
  });

  it("loads dashboards from the directory that compose and Kubernetes mount", () => {
    type Providers = { providers: { type: string; options: { path: string } }[] };
    const { providers } = readChartFile<Providers>(
      "grafana",
      "provisioning",
      "dashboards",
      "dashboards.yaml",
    );
    expect(providers.map((p) => [p.type, p.options.path])).toEqual([["file", DASHBOARDS_MOUNT]]);
  });
});

describe("prometheus configs", () => {
  type ScrapeConfig = {
    job_name: string;
    static_configs?: { targets: string[]; labels?: Record<string, string> }[];
    kubernetes_sd_configs?: { role: string; namespaces?: { own_namespace?: boolean } }[];
    relabel_configs?: Record<string, unknown>[];
  };
  type Config = { scrape_configs: ScrapeConfig[] };

  it("label the make dev nodes node1..node3 on their admin ports", () => {
    const config = readYaml<Config>("prometheus", "prometheus.dev.yml");
    const targets = config.scrape_configs.flatMap((s) => s.static_configs ?? []);
    expect(targets.map((t) => [t.targets, t.labels?.node])).toEqual([
      [["host.docker.internal:9464"], "node1"],
      [["host.docker.internal:9465"], "node2"],
      [["host.docker.internal:9466"], "node3"],
    ]);
    expect(prometheusDevConfig("127.0.0.1", "1s")).toContain("127.0.0.1:9466");
  });

  it("discover the likes pods of their own namespace by annotation, node = pod name", () => {
    const [job] = readChartFile<Config>("prometheus", "prometheus.yml").scrape_configs;
    expect(job?.job_name).toBe("likes");
    expect(job?.kubernetes_sd_configs).toEqual([
      { role: "pod", namespaces: { own_namespace: true } },
    ]);
    expect(job?.relabel_configs).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          source_labels: ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
          action: "keep",
        }),
        expect.objectContaining({
          source_labels: ["__meta_kubernetes_pod_name"],
          target_label: "node",
        }),
      ]),
    );
  });

  it("scrape each pod at its annotated port, whether its address is IPv4 or IPv6", () => {
    const [job] = readChartFile<Config>("prometheus", "prometheus.yml").scrape_configs;
    const rule = job?.relabel_configs?.find((r) => r.target_label === "__address__") as
      { regex: string; replacement: string } | undefined;
    expect(rule).toBeDefined();
    // As Prometheus applies it: the source labels joined by ';', the regex anchored.
    const relabel = (address: string, port: string) => {
      const match = new RegExp(`^(?:${rule?.regex})$`).exec(`${address};${port}`);
      return match
        ? rule?.replacement.replace(/\$(\d)/g, (_, i) => match[Number(i)] ?? "")
        : address;
    };
    expect(relabel("10.1.2.3:8080", "9464")).toBe("10.1.2.3:9464");
    expect(relabel("10.1.2.3", "9464")).toBe("10.1.2.3:9464");
    expect(relabel("[fd00::5]:8080", "9464")).toBe("[fd00::5]:9464");
  });

  it.skipIf(!hasPromtool).each(Object.keys(PROMETHEUS_CONFIGS))(
    `pass promtool check config: %s${skipNote("promtool", hasPromtool)}`,
    (name) => {
      const file = PROMETHEUS_CONFIGS[name] ?? name;
      let result = run("promtool", ["check", "config", file]);
      // Debian builds Prometheus without Kubernetes discovery: check everything else there.
      if (result.status !== 0 && /field kubernetes_sd_configs not found/.test(result.output)) {
        console.warn(`promtool lacks kubernetes_sd_configs; ${name} checked with it stubbed out`);
        const stubbed = readFileSync(file, "utf8").replace(
          /kubernetes_sd_configs:\n(?:\s{6,}.*\n)+/,
          'static_configs:\n      - targets: ["likes-0:9464"]\n',
        );
        const copy = join(mkdtempSync(join(tmpdir(), "promtool-")), name);
        writeFileSync(copy, stubbed);
        result = run("promtool", ["check", "config", copy]);
      }
      expect(result.output).toContain("SUCCESS");
      expect(result.status, result.output).toBe(0);
    },
  );

  it.skipIf(!hasPromtool)(
    `accept every dashboard query as PromQL (promtool check rules)${skipNote("promtool", hasPromtool)}`,
    () => {
      const rules = {
        groups: [
          {
            name: "dashboard-queries",
            rules: queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: q.expr })),
          },
        ],
      };
      const file = join(mkdtempSync(join(tmpdir(), "promtool-")), "queries.rules.json");
      writeFileSync(file, JSON.stringify(rules));
      const result = run("promtool", ["check", "rules", file]);
      expect(result.status, result.output).toBe(0);
    },
  );
});

describe("kubernetes manifests (the Helm chart's observability part)", () => {
  type Container = {
    name: string;
    image: string;
    args?: string[];
    resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
    securityContext?: Record<string, unknown>;
  };
  type PodSpec = { containers: Container[]; securityContext?: Record<string, unknown> };
  type Manifest = {
    apiVersion: string;
    kind: string;
    metadata: {
      name: string;
      namespace?: string;
      labels?: Record<string, string>;
      annotations?: Record<string, string>;
    };
    data?: Record<string, string>;
    spec?: {
      type?: string;
      ports?: { name: string; port: number }[];
      template?: {
        metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
        spec: PodSpec;
      };
    };
  };

  // The observability stack is what carries app.kubernetes.io/component: observability.
  const manifests = HELM
    ? (helmTemplate() as unknown as Manifest[]).filter(
        (m) => m.metadata.labels?.["app.kubernetes.io/component"] === "observability",
      )
    : [];
  const find = (kind: string, name: string): Manifest | undefined =>
    manifests.find((m) => m.kind === kind && m.metadata.name === name);
  const k8sIt = it.skipIf(!HELM);

  k8sIt(`render with helm template into valid Kubernetes objects${helmSkipNote}`, async () => {
    const kinds = new Set([
      "Deployment",
      "Service",
      "ConfigMap",
      "ServiceAccount",
      "Role",
      "RoleBinding",
    ]);
    expect(manifests.length).toBeGreaterThan(0);
    for (const m of manifests) {
      expect(kinds.has(m.kind), `unexpected kind ${m.kind}`).toBe(true);
      const Model = await modelFor(m);
      expect(() => new Model(m).validate(), m.metadata.name).not.toThrow();
      expect(m.metadata.namespace, `${m.kind}/${m.metadata.name}`).toBe("likes");
    }
  });

  k8sIt(`expose jaeger, prometheus and grafana Services on their ports${helmSkipNote}`, () => {
    const ports = (name: string): [string, number][] =>
      (find("Service", name)?.spec?.ports ?? []).map((p) => [p.name, p.port]);
    expect(ports("jaeger")).toEqual([
      ["otlp-grpc", 4317],
      ["otlp-http", 4318],
      ["ui", 16686],
    ]);
    // The only Jaeger Service that may leave the cluster carries the UI alone.
    expect(find("Service", "jaeger")?.spec?.type).toBe("ClusterIP");
    expect(ports("jaeger-ui")).toEqual([["ui", 16686]]);
    expect(ports("prometheus")).toEqual([["http", 9090]]);
    expect(ports("grafana")).toEqual([["http", 3000]]);
  });

  k8sIt(
    `run every container non-root, restricted, with pinned images and limits${helmSkipNote}`,
    () => {
      const pods = manifests.filter((m) => m.kind === "Deployment");
      expect(pods.map((m) => m.metadata.name).sort()).toEqual(["grafana", "jaeger", "prometheus"]);
      for (const m of pods) {
        const pod = m.spec?.template?.spec;
        for (const c of pod?.containers ?? []) {
          const where = `${m.metadata.name}/${c.name}`;
          expect(c.image, where).toMatch(/^[\w./-]+:v?\d+\.\d+\.\d+$/);
          expect(c.securityContext, where).toMatchObject({
            runAsNonRoot: true,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ["ALL"] },
            seccompProfile: { type: "RuntimeDefault" },
          });
          for (const kind of ["requests", "limits"] as const) {
            expect(Object.keys(c.resources?.[kind] ?? {}).sort(), `${where} ${kind}`).toEqual([
              "cpu",
              "memory",
            ]);
          }
        }
        expect(pod?.securityContext, m.metadata.name).toMatchObject({ runAsNonRoot: true });
      }
    },
  );

  k8sIt(
    `run Prometheus with exemplar storage, labelled for the NetworkPolicy${helmSkipNote}`,
    () => {
      const prometheus = find("Deployment", "prometheus");
      expect(prometheus?.spec?.template?.metadata.labels["app.kubernetes.io/name"]).toBe(
        "prometheus",
      );
      expect(prometheus?.spec?.template?.spec.containers[0]?.args).toContain(
        "--enable-feature=exemplar-storage",
      );
    },
  );

  k8sIt(`carry the repo files in their ConfigMaps, unchanged${helmSkipNote}`, () => {
    const data = (name: string) => find("ConfigMap", name)?.data;
    const file = (...p: string[]): string => readFileSync(join(CHART_FILES_DIR, ...p), "utf8");
    expect(data("prometheus-config")).toEqual({
      "prometheus.yml": file("prometheus", "prometheus.yml"),
    });
    expect(data("jaeger-config")).toEqual({ "config.yaml": file("jaeger", "config.yaml") });
    expect(data("grafana-dashboards")).toEqual(
      Object.fromEntries(
        dashboards.map((d) => [d.file.split("/").pop(), readFileSync(d.file, "utf8")]),
      ),
    );
    expect(data("grafana-datasources")).toEqual({
      "datasources.yaml": file("grafana", "provisioning", "datasources", "datasources.yaml"),
    });
    expect(data("grafana-dashboard-providers")).toEqual({
      "dashboards.yaml": file("grafana", "provisioning", "dashboards", "dashboards.yaml"),
    });
  });

  k8sIt(`roll a Deployment when a file it mounts changes (checksum)${helmSkipNote}`, () => {
    // checksum/<ConfigMap> = sha256 of the ConfigMap's values, concatenated in key order.
    const problems: string[] = [];
    for (const d of manifests.filter((m) => m.kind === "Deployment")) {
      const annotations = d.spec?.template?.metadata.annotations ?? {};
      const volumes =
        (d.spec?.template?.spec as { volumes?: { configMap?: { name: string } }[] }).volumes ?? [];
      for (const v of volumes) {
        if (!v.configMap) continue;
        const cm = find("ConfigMap", v.configMap.name);
        const keys = Object.keys(cm?.data ?? {}).sort();
        const content = keys.map((k) => cm?.data?.[k] ?? "").join("");
        const want = createHash("sha256").update(content).digest("hex");
        const got = annotations[`checksum/${v.configMap.name}`];
        if (got !== want) problems.push(`${d.metadata.name} checksum/${v.configMap.name}: ${got}`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe("compose stack", () => {
  type ComposeService = {
    image: string;
    command?: string[];
    volumes?: string[];
    ports?: string[];
    extra_hosts?: string[];
  };
  const compose = readYaml<{ services: Record<string, ComposeService> }>("compose.yaml");

  it("runs Jaeger, Prometheus and Grafana on the documented ports", () => {
    const published = Object.values(compose.services).flatMap((s) =>
      (s.ports ?? []).map((p) => Number(p.split(":").at(-2))),
    );
    expect(published.sort((a, b) => a - b)).toEqual([3000, 4317, 4318, 9090, 16686]);
  });

  it("scrapes the make dev nodes with exemplar storage on", () => {
    const prometheus = compose.services.prometheus;
    expect(prometheus?.command).toContain("--enable-feature=exemplar-storage");
    expect(prometheus?.volumes).toContain(
      "./prometheus/prometheus.dev.yml:/etc/prometheus/prometheus.yml:ro",
    );
    expect(prometheus?.extra_hosts).toEqual(["host.docker.internal:host-gateway"]);
  });

  it("mounts files that exist, the chart's own, and the dashboards where the provider looks", () => {
    const binds = Object.values(compose.services)
      .flatMap((s) => s.volumes ?? [])
      .filter((v) => v.startsWith("./") || v.startsWith("../"));
    for (const bind of binds) {
      expect(existsSync(resolve(OBSERVABILITY_DIR, bind.split(":")[0] ?? "")), bind).toBe(true);
    }
    // One copy of each file: compose mounts the Helm chart's files, not copies of them.
    const chartFile = (...p: string[]) => relative(OBSERVABILITY_DIR, join(CHART_FILES_DIR, ...p));
    expect(binds).toEqual(
      expect.arrayContaining([
        `${chartFile("jaeger", "config.yaml")}:/etc/jaeger/config.yaml:ro`,
        `${chartFile("grafana", "provisioning", "datasources")}:/etc/grafana/provisioning/datasources:ro`,
        `${chartFile("grafana", "provisioning", "dashboards")}:/etc/grafana/provisioning/dashboards:ro`,
        `${relative(OBSERVABILITY_DIR, DASHBOARDS_DIR)}:${DASHBOARDS_MOUNT}:ro`,
      ]),
    );
  });

  it("uses the same images as the Helm chart", () => {
    type Values = { observability: Record<string, { image: string }> };
    const values = parseYaml(readFileSync(join(CHART_FILES_DIR, "..", "values.yaml"), "utf8"));
    const images = Object.values((values as Values).observability)
      .map((c) => c.image)
      .filter(Boolean);
    expect(Object.values(compose.services).map((s) => s.image)).toEqual(images);
  });
});
