// The test cluster helper itself: a start that fails leaves no node process behind it, so that
// one failed test does not load the machine (and the tests after it) with orphaned nodes.
import { randomUUID } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { TestCluster } from "../support/cluster.js";

/** Processes whose environment holds `marker`. */
function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      if (readFileSync(`/proc/${pid}/environ`, "latin1").includes(marker)) found.push(Number(pid));
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return found;
}

describe("TestCluster", () => {
  it("stops the nodes that started when another one fails to", async () => {
    const marker = `LIKES_TEST_MARKER=${randomUUID()}`;
    const [key, value] = marker.split("=") as [string, string];
    const failure = await TestCluster.start(3, { [key]: value }, (i): Record<string, string> =>
      i === 1 ? { LIKES_PUSH_MS: "not a number" } : {},
    ).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(String(failure)).toMatch(/exited early[\s\S]*LIKES_PUSH_MS/);
    expect(processesWith(marker)).toEqual([]);
  });
});
