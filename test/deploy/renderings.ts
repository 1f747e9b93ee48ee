// The value sets the chart is rendered with in test/deploy (issue #16), each rendered once.
import { MINIKUBE_VALUES, helmTemplate } from "./helm.js";
import { Release } from "./release.js";

export const RENDERINGS: Record<string, string[]> = {
  defaults: [],
  "minikube values": ["-f", MINIKUBE_VALUES],
  "1 replica": ["--set", "replicaCount=1"],
  "5 replicas": ["--set", "replicaCount=5"],
  "observability off": ["--set", "observability.enabled=false"],
  existingSecret: ["--set", "clusterSecret.existingSecret=likes-secret-from-vault"],
  "every option": ["-f", "test/deploy/values-every-option.yaml"],
  "load on": ["--set", "load.enabled=true"],
};

const renders = new Map<string, Release>();

export function release(name: string): Release {
  let r = renders.get(name);
  if (!r) {
    const args = RENDERINGS[name];
    if (!args) throw new Error(`no rendering ${name}`);
    r = new Release(name, helmTemplate(args));
    renders.set(name, r);
  }
  return r;
}
