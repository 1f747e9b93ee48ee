// The README's Configuration table against what the node reads: a variable read and not
// documented, or documented and never read, is a defect of one or the other.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ConfigError, MAX_ORIGINS_LIMIT, loadConfig } from "../../src/config.js";
import type { NodeName, OriginId } from "../../src/crdt/index.js";
import { MAX_FRAME_BYTES } from "../../src/link/frames.js";
import { binaryCodec } from "../../src/replication/codec.js";

/** Every variable `loadConfig` asks of an environment holding `given`. */
function variablesRead(given: Record<string, string>): Set<string> {
  const asked = new Set<string>();
  const env = new Proxy(given, {
    get(target, name) {
      if (typeof name === "string") asked.add(name);
      return target[name as string];
    },
  });
  loadConfig(env, "n");
  return asked;
}

/** The rows of the README's Configuration table. */
function configurationTable(): string {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const section = readme.slice(readme.indexOf("\n## Configuration\n"));
  const end = section.indexOf("\n## ", 1);
  return (end < 0 ? section : section.slice(0, end))
    .split("\n")
    .filter((line) => line.startsWith("|"))
    .join("\n");
}

describe("configuration", () => {
  it("the README's table names every variable the node reads, and none it does not", () => {
    const read = new Set([
      ...variablesRead({}),
      // With peers, the secret and what depends on it are read too.
      ...variablesRead({
        LIKES_PEERS: "127.0.0.1:1",
        LIKES_CLUSTER_SECRET: "a-secret-of-enough-characters",
      }),
    ]);
    expect(read.size).toBeGreaterThan(15);
    const table = configurationTable();
    for (const name of read) expect(table, `README documents ${name}`).toContain(`\`${name}`);
    const documented = new Set(table.match(/\b(?:LIKES|K8S)_[A-Z0-9_]+/g));
    for (const name of documented) expect(read, `the node reads ${name}`).toContain(name);
  });

  it("bounds LIKES_MAX_ORIGINS where a first sync naming every origin still fits one frame", () => {
    expect(loadConfig({ LIKES_MAX_ORIGINS: String(MAX_ORIGINS_LIMIT) }, "n").maxOrigins).toBe(
      MAX_ORIGINS_LIMIT,
    );
    expect(() => loadConfig({ LIKES_MAX_ORIGINS: String(MAX_ORIGINS_LIMIT + 1) }, "n")).toThrow(
      ConfigError,
    );
    // Ids as a StatefulSet's pods make them: `likes-<ordinal>~` and 16 base-36 characters.
    const vv = new Map<OriginId, number>();
    for (let i = 0; i < MAX_ORIGINS_LIMIT; i++)
      vv.set(`likes-${i % 100}~${(1e15 + i).toString(36).padStart(16, "a")}` as OriginId, 1e9 + i);
    const origin = [...vv.keys()][0] as OriginId;
    const sync = binaryCodec.encode({ kind: "sync", node: "likes-0" as NodeName, origin, vv });
    expect(sync.length).toBeLessThan(MAX_FRAME_BYTES * 0.95);
  });
});
