// What `make render`/`make run` install (the image, rolled when its sources change), and the
// NOTES users read after `helm install`.
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { CHART, HELM, MINIKUBE_VALUES, REPO_ROOT, helmSkipNote, helmTemplate } from "./helm.js";
import { Release } from "./release.js";

describe.skipIf(!HELM)(`make render: what make run installs${helmSkipNote}`, () => {
  const render = (...vars: string[]) =>
    new Release(
      "make render",
      parseAll(
        execFileSync("make", ["-s", "render", ...vars], {
          cwd: REPO_ROOT,
          encoding: "utf8",
          maxBuffer: 64 * 1024 * 1024,
          env: { ...process.env, HELM: HELM ?? "" },
        }),
      ),
    );
  const parseAll = (text: string) =>
    text
      .split(/^---$/m)
      .map((doc) => parse(doc) as Release["objects"][number] | null)
      .filter((o): o is Release["objects"][number] => o !== null);

  it("deploys the image make run builds: IMAGE, default likes:dev, never pulled", () => {
    const makefile = readFileSync(join(REPO_ROOT, "mk/deploy.mk"), "utf8");
    expect(/^IMAGE \?= *(\S+)/m.exec(makefile)?.[1]).toBe("likes:dev");
    const r = render();
    expect(r.container().image).toBe("likes:dev");
    expect(r.container().imagePullPolicy).toBe("Never");
    const other = render("IMAGE=registry.example.test:5000/me/likes:v7");
    expect(other.container().image).toBe("registry.example.test:5000/me/likes:v7");
    expect(render("IMAGE=mine").container().image).toBe("mine:latest");
  });

  it("annotates the pods with a digest of the image's sources, so a rebuilt image rolls them", () => {
    // A copy of what the image is built from and what renders it, in a git tree of its own, so
    // that a source can change without touching this checkout.
    const tree = mkdtempSync(join(tmpdir(), "likes-digest-"));
    try {
      for (const path of ["Makefile", "mk", "k8s", "Dockerfile", "package.json", "src"])
        cpSync(join(REPO_ROOT, path), join(tree, path), { recursive: true });
      execFileSync("git", ["init", "-q"], { cwd: tree });
      const digest = () =>
        new Release(
          "make render",
          parseAll(
            execFileSync("make", ["-s", "render"], {
              cwd: tree,
              encoding: "utf8",
              maxBuffer: 64 * 1024 * 1024,
              env: { ...process.env, HELM: HELM ?? "" },
            }),
          ),
        ).likesPod().annotations["likes/build-sources"];
      const first = digest();
      expect(first).toMatch(/^[0-9a-f]{16}$/);
      expect(digest()).toBe(first);
      // A test file is not in the image: the pods stay.
      writeFileSync(join(tree, "src/new.test.ts"), "export {};\n");
      expect(digest()).toBe(first);
      // A changed source is: they roll.
      writeFileSync(join(tree, "src/main.ts"), "// changed\n", { flag: "a" });
      expect(digest()).not.toBe(first);
    } finally {
      rmSync(tree, { recursive: true, force: true });
    }
  });
});

// NOTES.txt is only rendered by `helm install`, which needs a cluster: a copy of the chart
// renders the same text into a ConfigMap that `helm template` prints.
describe.skipIf(!HELM)(`NOTES.txt${helmSkipNote}`, () => {
  const dir = mkdtempSync(join(tmpdir(), "likes-notes-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const chart = join(dir, "likes");
  cpSync(join(REPO_ROOT, CHART), chart, { recursive: true });
  const notes = readFileSync(join(chart, "templates/NOTES.txt"), "utf8");
  rmSync(join(chart, "templates/NOTES.txt"));
  writeFileSync(
    join(chart, "templates/_notes-under-test.tpl"),
    `{{- define "notes-under-test" -}}\n${notes}\n{{- end }}\n`,
  );
  writeFileSync(
    join(chart, "templates/notes-under-test.yaml"),
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes-under-test\ndata:\n  notes: {{ include "notes-under-test" . | quote }}\n',
  );
  const render = (args: string[]) => {
    const objects = helmTemplate(args, chart);
    const cm = objects.find(
      (o) => o.kind === "ConfigMap" && o.metadata.name === "notes-under-test",
    );
    return {
      text: (cm?.data as { notes?: string } | undefined)?.notes ?? "",
      r: new Release("notes", objects),
    };
  };

  it.each([
    ["defaults", []],
    ["minikube values", ["-f", join(REPO_ROOT, MINIKUBE_VALUES)]],
    ["observability off", ["--set", "observability.enabled=false"]],
  ])("with the %s, names only Services the release has", (_, args) => {
    const { text, r } = render(args);
    expect(text).toContain("helm test likes -n likes");
    const named = [
      ...text.matchAll(/svc\/([a-z0-9-]+)/g),
      ...text.matchAll(/minikube service ([a-z0-9-]+)/g),
      ...text.matchAll(/get svc ([a-z0-9-]+)/g),
    ].map((m) => m[1] ?? "");
    expect(named.length).toBeGreaterThan(0);
    for (const name of named) expect(r.maybe("Service", name), name).toBeDefined();
  });

  it("tells minikube users the seed's command, and says when tracing is off", () => {
    expect(render(["-f", join(REPO_ROOT, MINIKUBE_VALUES)]).text).toContain(
      "minikube service distributed-likes-service-cluster -n likes --url",
    );
    expect(render([]).text).toContain("port-forward svc/jaeger-ui 16686");
    expect(render(["--set", "observability.enabled=false"]).text).toContain("Tracing is off");
    expect(
      render([
        "--set",
        "observability.enabled=false",
        "--set",
        "tracing.otlpEndpoint=http://collector:4318",
      ]).text,
    ).toContain("Traces go to http://collector:4318");
  });
});
