// What each value of the chart does once rendered, and the bounds of the Jaeger that the chart
// runs. What `make render`/`make run` install and the NOTES are in chart-install.test.ts.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { IJob } from "kubernetes-models/batch/v1/Job";
import type { IService } from "kubernetes-models/v1/Service";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { startApp } from "../support/app.js";
import { CHART, HELM, REPO_ROOT, helmSkipNote, helmTemplate } from "./helm.js";
import { parseOptions } from "../../src/load/options.js";
import { Release, selects } from "./release.js";
import { release } from "./renderings.js";

const chartYaml = parse(readFileSync(join(REPO_ROOT, CHART, "Chart.yaml"), "utf8")) as {
  appVersion: string;
};

describe.skipIf(!HELM)(`chart values${helmSkipNote}`, () => {
  describe("defaults", () => {
    const r = () => release("defaults");

    it("serves the public port through distributed-likes-service-cluster, inside the cluster", () => {
      const client = r().find<IService>("Service", "distributed-likes-service-cluster");
      expect(client.spec?.type).toBe("ClusterIP");
      expect(
        client.spec?.ports?.map((p) => [p.port, r().resolve(r().likesPod(), p.targetPort)?.name]),
      ).toEqual([[8080, "http"]]);
      // GET / answers with the node name: the pod name, from the downward API.
      const podName = r()
        .container()
        .env?.find((e) => e.name === "K8S_POD_NAME");
      expect(podName?.valueFrom?.fieldRef?.fieldPath).toBe("metadata.name");
      expect(r().env("LIKES_NODE_NAME")).toBe("$(K8S_POD_NAME)");
    });

    it("runs the chart's appVersion of the likes image, tracing to the chart's Jaeger", () => {
      expect(r().container().image).toBe(`likes:${chartYaml.appVersion}`);
      expect(r().container().imagePullPolicy).toBe("IfNotPresent");
      const endpoint = new URL(r().env("OTEL_EXPORTER_OTLP_ENDPOINT") ?? "");
      const jaeger = r().find<IService>("Service", endpoint.hostname);
      expect(jaeger.spec?.ports?.map((p) => p.port)).toContain(Number(endpoint.port));
      expect(r().env("OTEL_SDK_DISABLED")).toBeUndefined();
      expect(r().env("OTEL_TRACES_SAMPLER")).toBeUndefined();
      expect(r().env("LIKES_TRACES_PER_SECOND")).toBe("10");
      expect(r().env("LIKES_FAULTS")).toBeUndefined();
      expect(r().env("LIKES_SNAPSHOT_THRESHOLD")).toBeUndefined();
    });

    it("passes the snapshot threshold as the node reads it: off, or a number of entries", () => {
      const env = (set: string) =>
        new Release(set, helmTemplate(["--set", set])).env("LIKES_SNAPSHOT_THRESHOLD");
      expect(env("snapshot.threshold=off")).toBe("off");
      expect(env("snapshot.threshold=0")).toBe("0");
      expect(env("snapshot.threshold=5000000")).toBe("5000000");
      expect(env("snapshot.threshold=9007199254740990")).toBe("9007199254740990");
      // The node exits on these (LIKES_SNAPSHOT_THRESHOLD up to 2^53 - 2): the chart says so first.
      for (const bad of ["snapshot.threshold=9007199254740991", "snapshot.threshold=-1"])
        expect(() => helmTemplate(["--set", bad]), bad).toThrow(/threshold/);
      expect(() =>
        helmTemplate(["--set-string", "snapshot.threshold=99999999999999999999"]),
      ).toThrow(/threshold/);
    });

    it("passes tracesPerSecond as the node reads it, and refuses what the node would refuse", () => {
      // From a values file or JSON a number is a float to Helm: 1000000 must not become 1e+06.
      const env = (json: string) =>
        new Release(json, helmTemplate(["--set-json", `tracing=${json}`])).env(
          "LIKES_TRACES_PER_SECOND",
        );
      expect(env('{"tracesPerSecond":1000000}')).toBe("1000000");
      expect(env('{"tracesPerSecond":1}')).toBe("1");
      // The node exits on these (a whole number from 1 to 1,000,000): the chart says so first.
      for (const bad of ["0", "2.5", "1000001"])
        expect(() => helmTemplate(["--set-json", `tracing={"tracesPerSecond":${bad}}`])).toThrow(
          /tracesPerSecond/,
        );
    });

    it("agrees on ports: env, container, Prometheus annotations", () => {
      const port = (name: string) => String(r().resolve(r().likesPod(), name)?.containerPort);
      expect(port("http")).toBe(r().env("LIKES_HTTP_PORT"));
      expect(port("peer")).toBe(r().env("LIKES_PEER_PORT"));
      expect(port("metrics")).toBe(r().env("LIKES_ADMIN_PORT"));
      const annotations = r().likesPod().annotations;
      expect(annotations["prometheus.io/scrape"]).toBe("true");
      expect(annotations["prometheus.io/port"]).toBe(port("metrics"));
      expect(annotations["prometheus.io/path"]).toBe("/metrics");
    });

    it("generates a random cluster secret, and rolls the pods when it changes", () => {
      const ref = r()
        .container()
        .env?.find((e) => e.name === "LIKES_CLUSTER_SECRET")?.valueFrom?.secretKeyRef;
      expect(ref?.key).toBe("LIKES_CLUSTER_SECRET");
      const secret = r().find<{ data?: Record<string, string> }>("Secret", ref?.name ?? "");
      const value = Buffer.from(secret.data?.[ref?.key ?? ""] ?? "", "base64").toString();
      expect(value).toMatch(/^[A-Za-z0-9]{64}$/);
      // Another rendering (a fresh install) draws another one: nothing fixed is committed.
      const again = new Release("again", helmTemplate()).find<{ data?: Record<string, string> }>(
        "Secret",
        ref?.name ?? "",
      );
      expect(again.data?.[ref?.key ?? ""]).not.toBe(secret.data?.[ref?.key ?? ""]);
      expect(r().likesPod().annotations["checksum/cluster-secret"]).toMatch(/^[0-9a-f]{64}$/);
    });

    it("is scraped by the chart's Prometheus", () => {
      const config = r().find<{ data?: Record<string, string> }>("ConfigMap", "prometheus-config");
      interface Relabel {
        source_labels?: string[];
        regex?: string;
        action?: string;
      }
      interface Job {
        kubernetes_sd_configs?: Array<{ role: string }>;
        relabel_configs?: Relabel[];
      }
      const text = config.data?.["prometheus.yml"] ?? "";
      const jobs = (parse(text) as { scrape_configs?: Job[] }).scrape_configs ?? [];
      const keeps = (job: Job, source: string, value: string) =>
        (job.relabel_configs ?? []).every(
          (rule) =>
            rule.action !== "keep" ||
            rule.source_labels?.length !== 1 ||
            rule.source_labels[0] !== source ||
            new RegExp(`^(?:${rule.regex ?? "(.*)"})$`).test(value),
        );
      const pod = r().likesPod();
      const scraping = jobs.filter(
        (job) =>
          job.kubernetes_sd_configs?.some((sd) => sd.role === "pod") &&
          keeps(
            job,
            "__meta_kubernetes_pod_annotation_prometheus_io_scrape",
            pod.annotations["prometheus.io/scrape"] ?? "",
          ) &&
          keeps(
            job,
            "__meta_kubernetes_pod_label_app_kubernetes_io_name",
            pod.labels["app.kubernetes.io/name"] ?? "",
          ) &&
          (job.relabel_configs ?? []).some((rule) =>
            rule.source_labels?.includes("__meta_kubernetes_pod_annotation_prometheus_io_port"),
          ),
      );
      expect(scraping.length).toBeGreaterThan(0);
    });

    it("probes only paths the app serves: /healthz (liveness, startup), /readyz (readiness)", async () => {
      const c = r().container();
      // Asked of the real public app: a renamed or removed route fails here.
      const app = await startApp();
      try {
        for (const p of [c.startupProbe, c.readinessProbe, c.livenessProbe]) {
          expect(p?.httpGet?.port).toBe("http");
          const res = await fetch(`${app.url}${p?.httpGet?.path}`);
          expect(res.status, `${p?.httpGet?.path}`).toBe(200);
        }
      } finally {
        await app.close();
      }
      expect(c.livenessProbe?.httpGet?.path).toBe("/healthz");
      expect(c.readinessProbe?.httpGet?.path).toBe("/readyz");
      // Conservative liveness: at least ~a minute of failures before a restart.
      const live = c.livenessProbe;
      expect((live?.periodSeconds ?? 10) * (live?.failureThreshold ?? 3)).toBeGreaterThanOrEqual(
        60,
      );
    });
  });

  it("minikube values: NodePorts for the API, the Jaeger UI and Grafana; the image never pulled", () => {
    const r = release("minikube values");
    const type = (name: string) => r.find<IService>("Service", name).spec?.type;
    expect(type("distributed-likes-service-cluster")).toBe("NodePort");
    expect(type("jaeger-ui")).toBe("NodePort");
    expect(type("grafana")).toBe("NodePort");
    expect(type("jaeger")).toBe("ClusterIP");
    expect(type("prometheus")).toBe("ClusterIP");
    const likesImage = r.pods().filter((p) => p.spec.containers[0]?.image?.startsWith("likes:"));
    expect(likesImage.map((p) => p.object.kind).sort()).toEqual(["Pod", "StatefulSet"]);
    for (const pod of likesImage)
      expect(pod.spec.containers[0]?.imagePullPolicy, pod.where).toBe("Never");
    // A local cluster to try things on: /faults is on (README, "Fault injection").
    expect(r.env("LIKES_FAULTS")).toBe("enabled");
  });

  it("observability off: no Jaeger, Prometheus or Grafana, and tracing off", () => {
    const r = release("observability off");
    expect(r.ofKind("Deployment")).toEqual([]);
    expect(r.objects.filter((o) => o.metadata.labels?.["app.kubernetes.io/component"])).toEqual([]);
    expect(r.env("OTEL_EXPORTER_OTLP_ENDPOINT")).toBeUndefined();
    expect(r.env("OTEL_SDK_DISABLED")).toBe("true");
  });

  it("existingSecret: the pods read it, the chart renders no Secret of its own", () => {
    const r = release("existingSecret");
    const ref = r.container().env?.find((e) => e.name === "LIKES_CLUSTER_SECRET")
      ?.valueFrom?.secretKeyRef;
    expect(ref).toEqual({ name: "likes-secret-from-vault", key: "LIKES_CLUSTER_SECRET" });
    expect(r.ofKind("Secret")).toEqual([]);
    expect(r.likesPod().annotations["checksum/cluster-secret"]).toBeUndefined();
  });

  it("every option lands where it should", () => {
    const r = release("every option");
    const values = parse(
      readFileSync(join(REPO_ROOT, "test/deploy/values-every-option.yaml"), "utf8"),
    ) as Record<"resources" | "tolerations" | "affinity", unknown> & {
      networkPolicy: { metricsFrom: unknown };
    };
    const sts = r.likes();
    const pod = r.likesPod();
    const c = r.container();
    expect(sts.spec?.replicas).toBe(4);
    expect(c.image).toBe("registry.example.test:5000/team/likes:v9.8.7");
    expect(c.imagePullPolicy).toBe("Always");
    expect(pod.spec.imagePullSecrets).toEqual([{ name: "registry-login" }]);
    const client = r.find<IService>("Service", "likes-public");
    expect(client.spec?.type).toBe("LoadBalancer");
    expect(client.spec?.ports).toEqual([{ name: "http", port: 80, targetPort: "http" }]);
    expect(c.resources).toEqual(values.resources);
    const claim = sts.spec?.volumeClaimTemplates?.[0]?.spec;
    expect([claim?.storageClassName, claim?.resources?.requests?.storage]).toEqual([
      "fast-ssd",
      "5Gi",
    ]);
    expect(r.env("OTEL_EXPORTER_OTLP_ENDPOINT")).toBe("http://otel-collector.monitoring:4318");
    expect(r.env("OTEL_TRACES_SAMPLER")).toBe("parentbased_traceidratio");
    expect(r.env("OTEL_TRACES_SAMPLER_ARG")).toBe("0.25");
    expect(r.env("LIKES_TRACES_PER_SECOND")).toBe("3");
    // A number as the node reads it, not as Helm prints a float (2e+06).
    expect(r.env("LIKES_SNAPSHOT_THRESHOLD")).toBe("2000000");
    expect(r.env("LIKES_FAULTS")).toBe("enabled");
    expect(r.env("LOG_LEVEL")).toBe("debug");
    expect(pod.annotations["example.test/owner"]).toBe("team-likes");
    expect(pod.annotations["prometheus.io/scrape"]).toBe("true");
    expect(pod.spec.nodeSelector).toEqual({ "example.test/pool": "likes" });
    expect(pod.spec.tolerations).toEqual(values.tolerations);
    expect(pod.spec.affinity).toEqual(values.affinity);
    const policy = r.find<INetworkPolicy>("NetworkPolicy", sts.metadata.name);
    const metrics = policy.spec?.ingress?.find((rule) =>
      rule.ports?.some((p) => p.port === "metrics"),
    );
    expect(metrics?.from).toEqual(values.networkPolicy.metricsFrom);
    const test = r.pods().find((p) => p.object.kind === "Pod");
    expect(test?.spec.containers[0]?.args?.[0]).toBe("--timeout-ms=30000");
    expect(test?.spec.imagePullSecrets).toEqual([{ name: "registry-login" }]);
    expect(test?.spec.nodeSelector).toEqual({ "example.test/pool": "likes" });
  });

  it("load off by default; load on: a Job of the likes image runs dist/load/main.js on the client Service", () => {
    expect(release("defaults").ofKind("Job")).toEqual([]);
    const r = release("load on");
    const [job, ...more] = r.ofKind<IJob>("Job");
    expect(more).toEqual([]);
    if (!job) throw new Error("no Job with load.enabled=true");
    // A new name per revision: each helm upgrade with load on starts a run.
    expect(job.metadata.name).toBe("likes-load-1");
    expect(job.spec?.backoffLimit).toBe(4);
    const pod = r.pods().find((p) => p.object === job);
    if (!pod) throw new Error("the Job has no pod template");
    expect(pod.spec.restartPolicy).toBe("Never");
    // Never mistaken for a likes node by a Service, the PodDisruptionBudget or the NetworkPolicy.
    expect(selects(r.likes().spec?.selector.matchLabels, pod.labels)).toBe(false);
    const c = r.container(pod, "load");
    expect([c.image, c.imagePullPolicy]).toEqual([
      r.container().image,
      r.container().imagePullPolicy,
    ]);
    // The image's WORKDIR holds dist/, which the build compiles from src/ (tsconfig.build.json).
    const [node, script] = c.command ?? [];
    expect(node).toBe("node");
    expect(readFileSync(join(REPO_ROOT, "Dockerfile"), "utf8")).toMatch(/^WORKDIR \/app$/m);
    expect(script).toBe("dist/load/main.js");
    expect(existsSync(join(REPO_ROOT, "src/load/main.ts"))).toBe(true);
    const arg = (name: string) =>
      c.args?.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
    const url = new URL(arg("url") ?? "");
    const client = r.find<IService>("Service", url.hostname);
    const port = client.spec?.ports?.find((p) => p.port === Number(url.port));
    expect(r.resolve(r.likesPod(), port?.targetPort)?.name).toBe("http");
    expect([
      arg("rate"),
      arg("duration"),
      arg("posts"),
      arg("zipf"),
      arg("users"),
      arg("reads"),
    ]).toEqual(["100", "5m", "1000", "1.1", "10000", "0.2"]);
    // Every argument is one the CLI accepts.
    expect(parseOptions(c.args ?? []).urls).toEqual([url.href.replace(/\/$/, "")]);
  });

  it("every load option lands in the Job", () => {
    const r = release("every option");
    const values = parse(
      readFileSync(join(REPO_ROOT, "test/deploy/values-every-option.yaml"), "utf8"),
    ) as { load: { resources: unknown } };
    const job = r.find<IJob>("Job", "likes-load-1");
    expect([job.spec?.backoffLimit, job.spec?.ttlSecondsAfterFinished]).toEqual([2, 600]);
    const pod = r.pods().find((p) => p.object === job);
    if (!pod) throw new Error("the Job has no pod template");
    const c = r.container(pod, "load");
    expect(c.image).toBe("registry.example.test:5000/team/likes:v9.8.7");
    expect(c.resources).toEqual(values.load.resources);
    expect(pod.spec.imagePullSecrets).toEqual([{ name: "registry-login" }]);
    expect(pod.spec.nodeSelector).toEqual({ "example.test/pool": "likes" });
    expect(c.args).toEqual([
      "--url=http://likes-public:80",
      "--rate=250",
      "--duration=90s",
      "--posts=50",
      "--zipf=0.9",
      "--users=300",
      "--reads=0.5",
      "--concurrency=64",
    ]);
    const o = parseOptions(c.args ?? []);
    expect([
      o.rate,
      o.durationMs,
      o.posts,
      o.zipfExponent,
      o.users,
      o.readShare,
      o.concurrency,
    ]).toEqual([250, 90_000, 50, 0.9, 300, 0.5, 64]);
  });

  it("bounds Jaeger's memory: memory_limiter first, below the container's limit; fewer traces", () => {
    const r = release("defaults");
    const cm = r.find<{ data?: Record<string, string> }>("ConfigMap", "jaeger-config");
    interface JaegerConfig {
      service: { pipelines: { traces: { processors: string[] } } };
      processors: { memory_limiter?: { limit_mib: number; spike_limit_mib: number } };
      extensions: {
        jaeger_storage: { backends: { memstore: { memory: { max_traces: number } } } };
      };
    }
    const config = parse(cm.data?.["config.yaml"] ?? "") as JaegerConfig;
    expect(config.service.pipelines.traces.processors[0]).toBe("memory_limiter");
    const limiter = config.processors.memory_limiter;
    const jaeger = r.pods().find((p) => p.where === "Deployment/likes/jaeger");
    const limit = jaeger?.spec.containers[0]?.resources?.limits?.memory;
    const mib = /^(\d+)(Mi|Gi)$/.exec(String(limit));
    expect(mib, `jaeger memory limit ${limit}`).not.toBeNull();
    const limitMib = Number(mib?.[1]) * (mib?.[2] === "Gi" ? 1024 : 1);
    expect(limiter?.limit_mib).toBeLessThan(limitMib);
    expect(limiter?.spike_limit_mib).toBeLessThan(limiter?.limit_mib ?? 0);
    expect(
      config.extensions.jaeger_storage.backends.memstore.memory.max_traces,
    ).toBeLessThanOrEqual(10_000);
  });
});
