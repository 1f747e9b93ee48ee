// The Helm chart k8s/chart/likes, the one source of the Kubernetes manifests: `helm lint
// --strict` passes, and every set of values users rely on renders into objects that match the
// Kubernetes schemas and agree with each other (names, ports, selectors, secrets, ConfigMaps).
// No cluster needed: `helm template` only; helm comes from scripts/helm.sh.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { IStatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import type { IService } from "kubernetes-models/v1/Service";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { describe, expect, it } from "vitest";
import { CHART, HELM, REPO_ROOT, helm, helmSkipNote } from "./helm.js";
import { describeObject, schemaErrors, unknownFields } from "./kube.js";
import { selects } from "./release.js";
import { RENDERINGS, release } from "./renderings.js";

const CLUSTER_SCOPED = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding"]);

describe.skipIf(!HELM)(`Helm chart ${CHART}${helmSkipNote}`, () => {
  it.each(Object.entries(RENDERINGS))(
    "passes helm lint --strict with the values of %s",
    (_, args) => {
      const result = helm(["lint", "--strict", CHART, ...args]);
      expect(result.status, result.output).toBe(0);
      expect(result.output).toContain("0 chart(s) failed");
    },
  );

  it.each([
    ["replicaCount=three", "replicaCount: Invalid type. Expected: integer, given: string"],
    ["service.type=Public", "service.type must be one of the following"],
    ["observability.enabled=yes", "observability.enabled: Invalid type. Expected: boolean"],
    ["persistence.size=null", "persistence: size is required"],
    ["replicaCount=0", "replicaCount: Must be greater than or equal to 1"],
    ["replicas=5", "Additional property replicas is not allowed"],
    ["load.rate=0", "load.rate: Must be greater than 0"],
    ["load.duration=30", "load.duration: Invalid type. Expected: string, given: integer"],
    ["snapshot.threshold=never", "snapshot.threshold: Must validate one and only one schema"],
  ])("refuses --set %s with a message naming the value", (set, message) => {
    const result = helm(["template", "likes", CHART, "--set", set]);
    expect(result.status, result.output).not.toBe(0);
    expect(result.output).toContain("values don't meet the specifications of the schema");
    expect(result.output).toContain(message);
  });

  describe.each(Object.keys(RENDERINGS))("rendered with %s", (name) => {
    const r = () => release(name);

    it("matches the Kubernetes schemas, with no field they do not know", async () => {
      expect(r().objects.length).toBeGreaterThan(0);
      const problems: string[] = [];
      for (const obj of r().objects) {
        const error = await schemaErrors(obj);
        if (error) problems.push(`${describeObject(obj)}: ${error}`);
        for (const path of await unknownFields(obj))
          problems.push(`${describeObject(obj)}: unknown field ${path}`);
      }
      expect(problems).toEqual([]);
    });

    it("puts every object in the release's namespace, with the standard labels", () => {
      const problems: string[] = [];
      for (const o of r().objects) {
        const where = describeObject(o);
        if (!CLUSTER_SCOPED.has(o.kind) && o.metadata.namespace !== "likes")
          problems.push(`${where}: namespace ${o.metadata.namespace}`);
        const labels = o.metadata.labels ?? {};
        for (const label of [
          "app.kubernetes.io/name",
          "app.kubernetes.io/instance",
          "app.kubernetes.io/managed-by",
          "helm.sh/chart",
        ])
          if (!labels[label]) problems.push(`${where}: no label ${label}`);
        if (labels["app.kubernetes.io/instance"] !== "likes")
          problems.push(`${where}: instance ${labels["app.kubernetes.io/instance"]}`);
      }
      expect(problems).toEqual([]);
    });

    it("runs every container as non-root with a read-only root filesystem, restricted", () => {
      const problems: string[] = [];
      for (const pod of r().pods()) {
        const podSc = pod.spec.securityContext;
        for (const c of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) {
          const sc = c.securityContext ?? {};
          const where = `${pod.where} container ${c.name}`;
          if (!(sc.runAsNonRoot ?? podSc?.runAsNonRoot)) problems.push(`${where}: runAsNonRoot`);
          if ((sc.runAsUser ?? podSc?.runAsUser) === 0) problems.push(`${where}: uid 0`);
          if (sc.readOnlyRootFilesystem !== true) problems.push(`${where}: writable root`);
          if (sc.allowPrivilegeEscalation !== false)
            problems.push(`${where}: allowPrivilegeEscalation`);
          if (!sc.capabilities?.drop?.includes("ALL")) problems.push(`${where}: drop ALL`);
          const seccomp = sc.seccompProfile?.type ?? podSc?.seccompProfile?.type;
          if (seccomp !== "RuntimeDefault") problems.push(`${where}: seccomp ${seccomp}`);
          if (!c.resources?.limits?.memory) problems.push(`${where}: no memory limit`);
        }
      }
      expect(problems).toEqual([]);
    });

    it("renders every Secret and ConfigMap that a pod refers to", () => {
      const existing = /clusterSecret\.existingSecret=(.+)/.exec(
        (RENDERINGS[name] ?? []).join(" "),
      )?.[1];
      const missing: string[] = [];
      const want = (kind: string, ref: string | undefined, where: string) => {
        if (kind === "Secret" && ref === existing) return;
        if (!ref || !r().maybe(kind, ref)) missing.push(`${where}: ${kind} ${ref}`);
      };
      for (const pod of r().pods()) {
        for (const v of pod.spec.volumes ?? []) {
          if (v.configMap) want("ConfigMap", v.configMap.name, pod.where);
          if (v.secret) want("Secret", v.secret.secretName, pod.where);
        }
        for (const c of pod.spec.containers) {
          for (const e of c.env ?? []) {
            const secretRef = e.valueFrom?.secretKeyRef;
            if (secretRef) {
              want("Secret", secretRef.name, pod.where);
              const secret = r().maybe<{ data?: Record<string, string> }>(
                "Secret",
                secretRef.name ?? "",
              );
              if (secret && !secret.data?.[secretRef.key])
                missing.push(`${pod.where}: key ${secretRef.key} of Secret ${secretRef.name}`);
            }
            if (e.valueFrom?.configMapKeyRef)
              want("ConfigMap", e.valueFrom.configMapKeyRef.name, pod.where);
          }
          for (const from of c.envFrom ?? []) {
            if (from.secretRef) want("Secret", from.secretRef.name, pod.where);
            if (from.configMapRef) want("ConfigMap", from.configMapRef.name, pod.where);
          }
        }
        const sa = pod.spec.serviceAccountName;
        if (sa) want("ServiceAccount", sa, pod.where);
      }
      expect(missing).toEqual([]);
    });

    it("finds peers through the headless Service that is the StatefulSet's serviceName", () => {
      const sts = r().likes();
      const headless = r().find<IService>("Service", sts.spec?.serviceName ?? "");
      expect(headless.spec?.clusterIP).toBe("None");
      expect(headless.spec?.publishNotReadyAddresses).toBe(true);
      expect(r().podsSelectedBy(headless.spec?.selector)).toEqual([r().likesPod()]);
      expect(r().env("LIKES_PEER_DNS")).toBe(headless.metadata.name);
      expect(
        headless.spec?.ports?.map((p) => r().resolve(r().likesPod(), p.targetPort)?.name),
      ).toEqual(["peer"]);
    });

    it("resolves every named port: Services, probes, NetworkPolicy", () => {
      const problems: string[] = [];
      for (const s of r().services()) {
        const pods = r().podsSelectedBy(s.spec?.selector);
        if (pods.length === 0) problems.push(`Service ${s.metadata.name} selects no pod`);
        for (const pod of pods)
          for (const p of s.spec?.ports ?? [])
            if (!r().resolve(pod, p.targetPort ?? p.port))
              problems.push(`Service ${s.metadata.name} port ${p.targetPort} on ${pod.where}`);
      }
      for (const pod of r().pods())
        for (const c of pod.spec.containers)
          for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe])
            if (probe?.httpGet && !r().resolve(pod, probe.httpGet.port))
              problems.push(`${pod.where} probe port ${probe.httpGet.port}`);
      for (const policy of r().ofKind<INetworkPolicy>("NetworkPolicy"))
        for (const rule of policy.spec?.ingress ?? [])
          for (const p of rule.ports ?? [])
            if (!r().resolve(r().likesPod(), p.port))
              problems.push(`NetworkPolicy ${policy.metadata.name} port ${p.port}`);
      expect(problems).toEqual([]);
    });

    it("lets anyone reach the public port, only peers the peer port, only Prometheus the metrics", () => {
      const policy = r().find<INetworkPolicy>("NetworkPolicy", r().likes().metadata.name);
      const pod = r().likesPod();
      expect(r().podsSelectedBy(policy.spec?.podSelector.matchLabels)).toEqual([pod]);
      expect(policy.spec?.policyTypes).toEqual(["Ingress"]);
      const rules = policy.spec?.ingress ?? [];
      const rulesFor = (port: string) =>
        rules.filter((rule) => rule.ports?.some((p) => r().resolve(pod, p.port)?.name === port));

      const [open, ...moreOpen] = rulesFor("http");
      expect(moreOpen).toEqual([]);
      expect(open?.from ?? []).toEqual([]);

      const [peer, ...morePeer] = rulesFor("peer");
      expect(morePeer).toEqual([]);
      const peerFrom = peer?.from ?? [];
      expect(peerFrom).toHaveLength(1);
      expect(r().podsSelectedBy(peerFrom[0]?.podSelector?.matchLabels)).toEqual([pod]);

      const [metrics, ...moreMetrics] = rulesFor("metrics");
      expect(moreMetrics).toEqual([]);
      expect(metrics?.from?.length).toBeGreaterThan(0);
      const prometheus = r().maybe("Deployment", "prometheus");
      if (prometheus) {
        // The chart's own Prometheus is let in, and nothing else of the chart.
        const admitted = (metrics?.from ?? []).flatMap((f) =>
          r().podsSelectedBy(f.podSelector?.matchLabels),
        );
        expect(admitted.map((p) => p.where)).toEqual([describeObject(prometheus)]);
      }
    });

    it("lets one pod down at a time (PodDisruptionBudget)", () => {
      const pdb = r().find<IPodDisruptionBudget>("PodDisruptionBudget", r().likes().metadata.name);
      expect(pdb.spec?.maxUnavailable).toBe(1);
      expect(pdb.spec?.minAvailable).toBeUndefined();
      expect(r().podsSelectedBy(pdb.spec?.selector?.matchLabels)).toEqual([r().likesPod()]);
    });

    it("exposes only the public API, the Jaeger UI and Grafana outside the cluster", () => {
      const exposed = r()
        .services()
        .filter((s) => s.spec?.type === "NodePort" || s.spec?.type === "LoadBalancer")
        .flatMap((s) =>
          (s.spec?.ports ?? []).map((p) => {
            const pod = r().podsSelectedBy(s.spec?.selector)[0];
            const target = pod ? r().resolve(pod, p.targetPort)?.containerPort : undefined;
            return `${s.metadata.name}:${target}`;
          }),
        );
      const clients = r()
        .services()
        .filter(
          (s) => s.spec?.clusterIP !== "None" && selects(s.spec?.selector, r().likesPod().labels),
        );
      const allowed = [
        ...clients.map((s) => `${s.metadata.name}:8080`),
        "jaeger-ui:16686",
        "grafana:3000",
      ];
      for (const e of exposed) expect(allowed, e).toContain(e);
      // OTLP (4317, 4318), the peer port and the admin port never leave the cluster.
      expect(exposed.join(" ")).not.toMatch(/:(4317|4318|7946|9464|9090)\b/);
    });

    it("has a helm test Pod that checks every pod by its peer-DNS name, with the likes image", () => {
      const sts = r().likes();
      const test = r()
        .ofKind("Pod")
        .find((p) => p.metadata.annotations?.["helm.sh/hook"] === "test");
      if (!test) throw new Error("no Pod with the helm.sh/hook: test annotation");
      const pod = r()
        .pods()
        .find((p) => p.object === test);
      if (!pod) throw new Error("the test Pod has no spec");
      // Never mistaken for a likes node by a Service, the PDB or the NetworkPolicy.
      expect(selects(sts.spec?.selector.matchLabels, pod.labels)).toBe(false);
      expect(pod.spec.restartPolicy).toBe("Never");
      const [check, ...more] = pod.spec.containers;
      expect(more).toEqual([]);
      expect(check?.image).toBe(r().container().image);
      expect(check?.imagePullPolicy).toBe(r().container().imagePullPolicy);

      // node <mounted script>, the script being files/replication-check.mjs byte for byte.
      const [node, script, ...extra] = check?.command ?? [];
      expect([node, extra]).toEqual(["node", []]);
      const mount = check?.volumeMounts?.find((m) => script?.startsWith(`${m.mountPath}/`));
      const volume = pod.spec.volumes?.find((v) => v.name === mount?.name);
      const configMap = r().find<{ data?: Record<string, string> }>(
        "ConfigMap",
        volume?.configMap?.name ?? "",
      );
      expect(configMap.metadata.annotations?.["helm.sh/hook"]).toBe("test");
      const key = script?.slice((mount?.mountPath.length ?? 0) + 1) ?? "";
      expect(configMap.data?.[key]).toBe(
        readFileSync(join(REPO_ROOT, CHART, "files/replication-check.mjs"), "utf8"),
      );

      const replicas = sts.spec?.replicas ?? 0;
      const name = sts.metadata.name;
      const headless = sts.spec?.serviceName ?? "";
      const port = r().resolve(r().likesPod(), "http")?.containerPort;
      const nodes = Array.from(
        { length: replicas },
        (_, i) => `${name}-${i}=http://${name}-${i}.${headless}:${port}`,
      );
      expect(check?.args?.filter((a) => !a.startsWith("--"))).toEqual(nodes);
    });
  });

  it("catches a misspelled field that kubernetes-models lets through", async () => {
    const sts = release("defaults").likes();
    const broken = structuredClone(sts);
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

  it("renders 1 and 5 replicas as asked", () => {
    expect(release("1 replica").likes().spec?.replicas).toBe(1);
    expect(release("5 replicas").likes().spec?.replicas).toBe(5);
    expect(release("defaults").likes().spec?.replicas).toBe(3);
  });

  it("renders the StatefulSet as one the API server accepts: parallel, a volume at LIKES_DATA_DIR", () => {
    const r = release("defaults");
    const spec: IStatefulSet["spec"] = r.likes().spec;
    expect(spec?.podManagementPolicy).toBe("Parallel");
    const claim = spec?.volumeClaimTemplates?.[0];
    expect(claim?.spec?.resources?.requests?.storage).toBe("1Gi");
    const mounts = r.container().volumeMounts ?? [];
    expect(mounts.find((m) => m.name === claim?.metadata?.name)?.mountPath).toBe(
      r.env("LIKES_DATA_DIR"),
    );
    const tmp = mounts.find((m) => m.mountPath === "/tmp");
    expect(r.likesPod().spec.volumes?.find((v) => v.name === tmp?.name)?.emptyDir).toBeDefined();
    expect(r.likesPod().spec.terminationGracePeriodSeconds ?? 30).toBeGreaterThan(5);
    // make stop deletes the volume claims (which outlive the StatefulSet) by this label.
    expect(claim?.metadata?.labels?.["app.kubernetes.io/instance"]).toBe("likes");
    const makefile = readFileSync(join(REPO_ROOT, "mk/deploy.mk"), "utf8");
    expect(makefile).toMatch(/^RELEASE := likes$/m);
    expect(makefile).toContain("delete pvc -l app.kubernetes.io/instance=$(RELEASE)");
  });
});
