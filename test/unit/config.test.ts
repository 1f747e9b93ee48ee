// The README's Configuration table against what the node reads: a variable read and not
// documented, or documented and never read, is a defect of one or the other.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";

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
});
