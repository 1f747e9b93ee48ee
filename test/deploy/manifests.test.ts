// The Kubernetes manifests: every kustomization renders, every object matches the Kubernetes
// schemas with no unknown field, and the pieces that must agree (names, ports, probes, image,
// secret, Prometheus scraping) do. No cluster needed: `kubectl kustomize` only.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { IContainer, IContainerPort, IPodSpec, IProbe } from "kubernetes-models/v1";
import type { IService } from "kubernetes-models/v1/Service";
import type { IStatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { startApp } from "../support/app.js";
import {
  describeObject,
  kubectlAvailable,
  kustomize,
  renderTree,
  schemaErrors,
  unknownFields,
  type KubeObject,
} from "./kube.js";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const hasKubectl = kubectlAvailable();
// A laptop without kubectl skips; CI must not pass by skipping.
if (!hasKubectl && process.env.CI === "true") throw new Error("kubectl is required in CI");

const overlays = readdirSync(join(repoRoot, "k8s/overlays")).map((o) => `k8s/overlays/${o}`);
const observability = "observability/k8s";
const kustomizations = ["k8s/base", ...overlays, observability];

const tree = hasKubectl ? renderTree(repoRoot) : undefined;
afterAll(() => tree?.dispose());
const renders = new Map<string, KubeObject[]>();
function rendered(dir: string): KubeObject[] {
  if (!tree) throw new Error("kubectl is not installed");
  let objects = renders.get(dir);
  if (!objects) {
    objects = kustomize(join(tree.root, dir));
    renders.set(dir, objects);
  }
  return objects;
}

interface IPodTemplateOwner {
  template: { metadata?: { labels?: Record<string, string> }; spec: IPodSpec };
}
const WORKLOADS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"]);
function podSpecs(objects: KubeObject[]): Array<[string, IPodSpec]> {
  return objects
    .filter((o) => WORKLOADS.has(o.kind))
    .map((o) => {
      const spec = o.spec as IPodTemplateOwner;
      return [describeObject(o), spec.template.spec];
    });
}

describe.skipIf(!hasKubectl)(
  `Kubernetes manifests${hasKubectl ? "" : " (skipped: kubectl not installed)"}`,
  () => {
    describe.each(kustomizations)("%s", (dir) => {
      const present = existsSync(join(repoRoot, dir));

      it.skipIf(!present)(
        `renders with kubectl kustomize${present ? "" : " (dir missing)"}`,
        () => {
          expect(rendered(dir).length).toBeGreaterThan(0);
        },
      );

      it.skipIf(!present)("matches the Kubernetes schemas (kubernetes-models)", async () => {
        const errors: string[] = [];
        for (const obj of rendered(dir)) {
          const error = await schemaErrors(obj);
          if (error) errors.push(`${describeObject(obj)}: ${error}`);
        }
        expect(errors).toEqual([]);
      });

      it.skipIf(!present)("has no field the schemas do not know", async () => {
        const unknown: string[] = [];
        for (const obj of rendered(dir)) {
          for (const path of await unknownFields(obj))
            unknown.push(`${describeObject(obj)} ${path}`);
        }
        expect(unknown).toEqual([]);
      });

      it.skipIf(!present)("runs every container as non-root, restricted", () => {
        const problems: string[] = [];
        for (const [name, pod] of podSpecs(rendered(dir))) {
          for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
            const sc = c.securityContext ?? {};
            const where = `${name} container ${c.name}`;
            if (!(sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot))
              problems.push(`${where}: runAsNonRoot`);
            if ((sc.runAsUser ?? pod.securityContext?.runAsUser) === 0)
              problems.push(`${where}: uid 0`);
            if (sc.allowPrivilegeEscalation !== false)
              problems.push(`${where}: allowPrivilegeEscalation`);
            if (!sc.capabilities?.drop?.includes("ALL")) problems.push(`${where}: drop ALL`);
            const seccomp = sc.seccompProfile?.type ?? pod.securityContext?.seccompProfile?.type;
            if (seccomp !== "RuntimeDefault") problems.push(`${where}: seccomp ${seccomp}`);
          }
        }
        expect(problems).toEqual([]);
      });
    });

    it("catches a misspelled field that kubernetes-models lets through", async () => {
      const sts = rendered("k8s/base").find((o) => o.kind === "StatefulSet");
      if (!sts) throw new Error("no StatefulSet in k8s/base");
      const broken = structuredClone(sts) as KubeObject & IStatefulSet;
      const container = broken.spec?.template.spec?.containers[0] as unknown as Record<
        string,
        unknown
      >;
      container.readinessProb = container.readinessProbe;
      delete container.readinessProbe;
      (broken.spec as unknown as Record<string, unknown>).replica = 3;
      expect((await unknownFields(broken)).sort()).toEqual([
        ".spec.replica",
        ".spec.template.spec.containers[0].readinessProb",
      ]);
      expect(await unknownFields(sts)).toEqual([]);
    });
  },
);

// Cross-references in what `make run` applies.
describe.skipIf(!hasKubectl)(
  `minikube overlay: the pieces agree${hasKubectl ? "" : " (skipped)"}`,
  () => {
    const objects = () => rendered("k8s/overlays/minikube");
    const find = <T>(kind: string, name: string): T & KubeObject => {
      const obj = objects().find((o) => o.kind === kind && o.metadata.name === name);
      if (!obj) throw new Error(`no ${kind}/${name} in k8s/overlays/minikube`);
      return obj as T & KubeObject;
    };
    const likes = () => find<IStatefulSet>("StatefulSet", "likes");
    const pod = (): IPodSpec => {
      const spec = likes().spec?.template.spec;
      if (!spec) throw new Error("StatefulSet likes has no pod spec");
      return spec;
    };
    const container = (): IContainer => {
      const c = pod().containers.find((x) => x.name === "likes");
      if (!c) throw new Error("no container likes");
      return c;
    };
    const env = (name: string): string | undefined =>
      container().env?.find((e) => e.name === name)?.value;
    const port = (name: string): IContainerPort => {
      const p = container().ports?.find((x) => x.name === name);
      if (!p) throw new Error(`container likes has no port ${name}`);
      return p;
    };
    // A port reference (name or number) that a container port answers.
    const resolve = (ref: string | number | undefined): IContainerPort | undefined =>
      container().ports?.find((p) => p.name === ref || p.containerPort === ref);
    const podLabels = () => likes().spec?.template.metadata?.labels ?? {};
    const selects = (
      selector: Record<string, string> | undefined,
      labels: Record<string, string>,
    ) =>
      selector !== undefined &&
      Object.keys(selector).length > 0 &&
      Object.entries(selector).every(([k, v]) => labels[k] === v);

    it("puts every namespaced object in namespace likes", () => {
      const cluster = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding"]);
      const stray = objects().filter(
        (o) => !cluster.has(o.kind) && o.metadata.namespace !== "likes",
      );
      expect(stray.map(describeObject)).toEqual([]);
      expect(find("Namespace", "likes")).toBeDefined();
    });

    it("runs 3 replicas in parallel with a volume at LIKES_DATA_DIR and /tmp writable", () => {
      const spec = likes().spec;
      expect(spec?.replicas).toBe(3);
      expect(spec?.podManagementPolicy).toBe("Parallel");
      const claim = spec?.volumeClaimTemplates?.[0]?.metadata?.name;
      const mounts = container().volumeMounts ?? [];
      expect(mounts.find((m) => m.name === claim)?.mountPath).toBe(env("LIKES_DATA_DIR"));
      expect(container().securityContext?.readOnlyRootFilesystem).toBe(true);
      const tmp = mounts.find((m) => m.mountPath === "/tmp");
      expect(pod().volumes?.find((v) => v.name === tmp?.name)?.emptyDir).toBeDefined();
    });

    it("finds peers through the headless Service named by serviceName and LIKES_PEER_DNS", () => {
      const name = likes().spec?.serviceName ?? "";
      const headless = find<IService>("Service", name);
      expect(headless.spec?.clusterIP).toBe("None");
      expect(headless.spec?.publishNotReadyAddresses).toBe(true);
      expect(selects(headless.spec?.selector, podLabels())).toBe(true);
      expect([name, `${name}.likes.svc.cluster.local`]).toContain(env("LIKES_PEER_DNS"));
      expect(headless.spec?.ports?.map((p) => resolve(p.targetPort ?? p.port)?.name)).toEqual([
        "peer",
      ]);
    });

    it("agrees on ports: env, container, Services, probes, NetworkPolicy, Prometheus", () => {
      expect(String(port("http").containerPort)).toBe(env("LIKES_HTTP_PORT"));
      expect(String(port("peer").containerPort)).toBe(env("LIKES_PEER_PORT"));
      expect(String(port("metrics").containerPort)).toBe(env("LIKES_ADMIN_PORT"));

      const services = objects().filter(
        (o): o is IService & KubeObject =>
          o.kind === "Service" && selects((o as IService).spec?.selector, podLabels()),
      );
      expect(services.map((s) => s.metadata.name).sort()).toEqual([
        "distributed-likes-service-cluster",
        "likes-peers",
      ]);
      for (const s of services) {
        for (const p of s.spec?.ports ?? []) expect(resolve(p.targetPort ?? p.port)).toBeDefined();
      }

      const probes: IProbe[] = [];
      for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"] as const) {
        const p = container()[probe];
        expect(p, probe).toBeDefined();
        if (p) probes.push(p);
      }
      for (const p of probes) expect(resolve(p.httpGet?.port)?.name).toBe("http");

      const annotations = likes().spec?.template.metadata?.annotations ?? {};
      expect(annotations["prometheus.io/scrape"]).toBe("true");
      expect(annotations["prometheus.io/port"]).toBe(String(port("metrics").containerPort));
      expect(annotations["prometheus.io/path"]).toBe("/metrics");
    });

    it("client Service distributed-likes-service-cluster is a NodePort on the public port only", () => {
      const client = find<IService>("Service", "distributed-likes-service-cluster");
      expect(client.spec?.type).toBe("NodePort");
      expect(client.spec?.ports?.map((p) => resolve(p.targetPort ?? p.port)?.name)).toEqual([
        "http",
      ]);
      // GET / answers with the node name: the pod name, from the downward API.
      const fieldRef = container().env?.find((e) => e.name === "K8S_POD_NAME")?.valueFrom?.fieldRef;
      expect(fieldRef?.fieldPath).toBe("metadata.name");
      expect(env("LIKES_NODE_NAME")).toBe("$(K8S_POD_NAME)");
    });

    it("probes only paths the app serves: /healthz (liveness, startup), /readyz (readiness)", async () => {
      const c = container();
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

    it("gives the 5 s graceful shutdown room before SIGKILL", () => {
      expect(pod().terminationGracePeriodSeconds ?? 30).toBeGreaterThan(5);
    });

    it("opens the peer port only to likes pods and the metrics port only to Prometheus", () => {
      const policy = find<INetworkPolicy>("NetworkPolicy", "likes");
      expect(selects(policy.spec?.podSelector.matchLabels, podLabels())).toBe(true);
      expect(policy.spec?.policyTypes).toContain("Ingress");
      const rules = policy.spec?.ingress ?? [];
      const rulesFor = (name: string) =>
        rules.filter((r) => r.ports?.some((p) => resolve(p.port)?.name === name));
      for (const r of rules) for (const p of r.ports ?? []) expect(resolve(p.port)).toBeDefined();

      const peer = rulesFor("peer");
      expect(peer).toHaveLength(1);
      expect(peer[0]?.from).toEqual([{ podSelector: { matchLabels: podLabels() } }]);

      const metrics = rulesFor("metrics");
      expect(metrics).toHaveLength(1);
      const prometheusLabels = { "app.kubernetes.io/name": "prometheus" };
      expect(metrics[0]?.from).toEqual([{ podSelector: { matchLabels: prometheusLabels } }]);
      // ... and those are the labels of the Prometheus that observability/k8s runs.
      const prometheus = find<{ spec?: IPodTemplateOwner }>("Deployment", "prometheus");
      expect(selects(prometheusLabels, prometheus.spec?.template.metadata?.labels ?? {})).toBe(
        true,
      );
    });

    it("is scraped by the Prometheus of observability/k8s", () => {
      const config = objects().find(
        (o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("prometheus-config"),
      );
      const text = (config?.data as Record<string, string> | undefined)?.["prometheus.yml"];
      expect(text, "ConfigMap prometheus-config with prometheus.yml").toBeDefined();
      interface Relabel {
        source_labels?: string[];
        regex?: string;
        action?: string;
      }
      interface Job {
        kubernetes_sd_configs?: Array<{ role: string }>;
        relabel_configs?: Relabel[];
      }
      const jobs = (parse(text ?? "") as { scrape_configs?: Job[] }).scrape_configs ?? [];
      const podJobs = jobs.filter((j) => j.kubernetes_sd_configs?.some((sd) => sd.role === "pod"));
      const keeps = (job: Job, source: string, value: string) =>
        (job.relabel_configs ?? []).every(
          (r) =>
            r.action !== "keep" ||
            r.source_labels?.length !== 1 ||
            r.source_labels[0] !== source ||
            new RegExp(`^(?:${r.regex ?? "(.*)"})$`).test(value),
        );
      const annotations = likes().spec?.template.metadata?.annotations ?? {};
      const scraping = podJobs.filter(
        (job) =>
          keeps(
            job,
            "__meta_kubernetes_pod_annotation_prometheus_io_scrape",
            annotations["prometheus.io/scrape"] ?? "",
          ) &&
          keeps(
            job,
            "__meta_kubernetes_pod_label_app_kubernetes_io_name",
            podLabels()["app.kubernetes.io/name"] ?? "",
          ) &&
          (job.relabel_configs ?? []).some((r) =>
            r.source_labels?.includes("__meta_kubernetes_pod_annotation_prometheus_io_port"),
          ),
      );
      expect(scraping.length).toBeGreaterThan(0);
    });

    it("runs the image that the Makefile builds, never pulled on minikube", () => {
      const makefile = readFileSync(join(repoRoot, "mk/deploy.mk"), "utf8");
      const image = /^IMAGE \?= *(\S+)/m.exec(makefile)?.[1];
      expect(image).toBeDefined();
      expect(container().image).toBe(image);
      expect(container().imagePullPolicy).toBe("Never");
    });

    it("sends traces to the Jaeger Service of observability/k8s", () => {
      const jaeger = find<IService>("Service", "jaeger");
      const endpoint = new URL(env("OTEL_EXPORTER_OTLP_ENDPOINT") ?? "");
      expect(endpoint.hostname).toBe(jaeger.metadata?.name);
      expect(jaeger.spec?.ports?.map((p) => p.port)).toContain(Number(endpoint.port));
    });

    it("takes the cluster secret from a generated Secret, none committed", () => {
      const ref = container().env?.find((e) => e.name === "LIKES_CLUSTER_SECRET")?.valueFrom
        ?.secretKeyRef;
      expect(ref).toBeDefined();
      const secret = objects().find((o) => o.kind === "Secret" && o.metadata.name === ref?.name);
      expect(secret, `Secret ${ref?.name}`).toBeDefined();
      expect(Object.keys(secret?.data ?? {})).toContain(ref?.key);
      // The generated name carries a content hash, so that a new secret rolls the pods.
      expect(ref?.name).toMatch(/^likes-cluster-[a-z0-9]{10}$/);

      const committed = execFileSync("git", ["ls-files", "k8s"], {
        cwd: repoRoot,
        encoding: "utf8",
      });
      expect(committed.split("\n").filter((f) => f.endsWith("cluster-secret.env"))).toEqual([]);
      const secretFile = "k8s/overlays/minikube/cluster-secret.env";
      let ignored = true;
      try {
        execFileSync("git", ["check-ignore", "-q", "--no-index", secretFile], { cwd: repoRoot });
      } catch {
        ignored = false;
      }
      expect(ignored, `${secretFile} must be in .gitignore`).toBe(true);
    });

    it("keeps at most one pod disrupted at a time", () => {
      const pdb = find<IPodDisruptionBudget>("PodDisruptionBudget", "likes");
      expect(pdb.spec?.maxUnavailable).toBe(1);
      expect(selects(pdb.spec?.selector?.matchLabels, podLabels())).toBe(true);
    });
  },
);
