// Questions asked of one rendering of the chart: which objects, which pods, what selects what.
import type { IContainer, IContainerPort, IPodSpec } from "kubernetes-models/v1";
import type { IService } from "kubernetes-models/v1/Service";
import type { IStatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import { describeObject, type KubeObject } from "./kube.js";

export interface PodOwner {
  /** e.g. StatefulSet/likes/likes, or Pod/likes/likes-replication-test */
  where: string;
  object: KubeObject;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  spec: IPodSpec;
}

interface IPodTemplateOwner {
  template: {
    metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
    spec: IPodSpec;
  };
}
const WORKLOADS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"]);

export const selects = (
  selector: Record<string, string> | undefined,
  labels: Record<string, string>,
): boolean =>
  selector !== undefined &&
  Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels[k] === v);

export class Release {
  constructor(
    readonly name: string,
    readonly objects: KubeObject[],
  ) {}

  find<T>(kind: string, name: string): T & KubeObject {
    const obj = this.maybe<T>(kind, name);
    if (!obj) throw new Error(`${this.name}: no ${kind}/${name}`);
    return obj;
  }

  maybe<T>(kind: string, name: string): (T & KubeObject) | undefined {
    return this.objects.find((o) => o.kind === kind && o.metadata.name === name) as
      (T & KubeObject) | undefined;
  }

  ofKind<T>(kind: string): Array<T & KubeObject> {
    return this.objects.filter((o) => o.kind === kind) as Array<T & KubeObject>;
  }

  /** Every pod this rendering would run: workloads' templates and bare Pods (helm test). */
  pods(): PodOwner[] {
    return this.objects.flatMap((o): PodOwner[] => {
      if (WORKLOADS.has(o.kind)) {
        const t = (o.spec as IPodTemplateOwner).template;
        return [
          {
            where: describeObject(o),
            object: o,
            labels: t.metadata?.labels ?? {},
            annotations: t.metadata?.annotations ?? {},
            spec: t.spec,
          },
        ];
      }
      if (o.kind === "Pod")
        return [
          {
            where: describeObject(o),
            object: o,
            labels: o.metadata.labels ?? {},
            annotations: o.metadata.annotations ?? {},
            spec: o.spec as IPodSpec,
          },
        ];
      return [];
    });
  }

  podsSelectedBy(selector: Record<string, string> | undefined): PodOwner[] {
    return this.pods().filter((p) => selects(selector, p.labels));
  }

  likes(): IStatefulSet & KubeObject {
    const [sts, ...more] = this.ofKind<IStatefulSet>("StatefulSet");
    if (!sts || more.length > 0) throw new Error(`${this.name}: want one StatefulSet`);
    return sts;
  }

  likesPod(): PodOwner {
    const pod = this.pods().find((p) => p.object === this.likes());
    if (!pod) throw new Error(`${this.name}: StatefulSet has no pod template`);
    return pod;
  }

  container(pod: PodOwner = this.likesPod(), name = "likes"): IContainer {
    const c = pod.spec.containers.find((x) => x.name === name);
    if (!c) throw new Error(`${pod.where} has no container ${name}`);
    return c;
  }

  env(name: string): string | undefined {
    return this.container().env?.find((e) => e.name === name)?.value;
  }

  /** The container port of `pod` that a port reference (name or number) designates. */
  resolve(pod: PodOwner, ref: string | number | undefined): IContainerPort | undefined {
    return pod.spec.containers
      .flatMap((c) => c.ports ?? [])
      .find((p) => p.name === ref || p.containerPort === ref);
  }

  services(): Array<IService & KubeObject> {
    return this.ofKind<IService>("Service");
  }
}
