// No package-registry or mirror address is written into the project: scripts take them from
// the machine (apt's sources, npm's own configuration) or from the environment.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "./helm.js";

const THIS_FILE = "test/deploy/registry-addresses.test.ts";

describe("scripts/debian-mirror.sh", () => {
  const root = mkdtempSync(join(tmpdir(), "likes-apt-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  let n = 0;
  /** An apt configuration dir with these files, e.g. {"sources.list.d/debian.sources": "…"}. */
  const aptEtc = (files: Record<string, string>): string => {
    const etc = join(root, `etc${n++}`);
    mkdirSync(join(etc, "sources.list.d"), { recursive: true });
    for (const [name, text] of Object.entries(files)) writeFileSync(join(etc, name), text);
    return etc;
  };
  const mirror = (etc: string, env: Record<string, string> = {}) => {
    const r = spawnSync("scripts/debian-mirror.sh", [], {
      cwd: REPO_ROOT,
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "", APT_ETC: etc, ...env },
    });
    return { status: r.status, stdout: r.stdout.trim(), stderr: r.stderr };
  };

  it("takes the first Debian archive of apt's deb822 sources, not the security one", () => {
    const etc = aptEtc({
      "sources.list.d/debian.sources": [
        "Types: deb",
        "URIs: http://mirror.example.test/debian-security",
        "Suites: bookworm-security",
        "",
        "Types: deb",
        "URIs: https://mirror.example.test/debian",
        "Suites: bookworm bookworm-updates",
        "",
      ].join("\n"),
    });
    expect(mirror(etc)).toEqual({
      status: 0,
      stdout: "https://mirror.example.test/debian",
      stderr: "",
    });
  });

  it("reads one-line sources.list entries, options and all", () => {
    const etc = aptEtc({
      "sources.list": [
        "# deb http://commented.example.test/debian bookworm main",
        "deb http://security.example.test/debian-security bookworm-security main",
        "deb [signed-by=/usr/share/keyrings/k.gpg arch=amd64] http://local.example.test/debian bookworm main",
        "",
      ].join("\n"),
    });
    expect(mirror(etc).stdout).toBe("http://local.example.test/debian");
  });

  it("prefers DEBIAN_MIRROR", () => {
    const etc = aptEtc({ "sources.list": "deb http://apt.example.test/debian bookworm main\n" });
    expect(mirror(etc, { DEBIAN_MIRROR: "http://env.example.test/debian" }).stdout).toBe(
      "http://env.example.test/debian",
    );
  });

  it("stops with a clear message when apt has no source, never guessing one", () => {
    const r = mirror(aptEtc({}));
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("no Debian mirror");
    expect(r.stderr).toContain("set DEBIAN_MIRROR");
  });
});

describe("the project's files", () => {
  it("name no package registry or mirror host", () => {
    // Hosts of the registries this project's tools fetch from. package-lock.json is npm's
    // record of where packages came from; npm replaces that host with the configured registry.
    const hosts = [
      "deb.debian.org",
      "ftp.debian.org",
      "security.debian.org",
      "snapshot.debian.org",
      "archive.ubuntu.com",
      "registry.npmjs.org",
      "registry.yarnpkg.com",
      "npmmirror.com",
      "pypi.org",
      "files.pythonhosted.org",
      "nodejs.org/dist",
    ];
    // --untracked: files not committed yet count too (ignored ones, like .cache, do not).
    const grep = spawnSync(
      "git",
      [
        "grep",
        "--untracked",
        "-n",
        "-I",
        "-F",
        ...hosts.flatMap((h) => ["-e", h]),
        "--",
        ".",
        ":!package-lock.json",
        `:!${THIS_FILE}`,
      ],
      { cwd: REPO_ROOT, encoding: "utf8" },
    );
    // git grep: 1 = nothing found, 0 = found (the lines are the failure message).
    expect(grep.stdout).toBe("");
    expect(grep.status, grep.stderr).toBe(1);
  });
});
