// The benchmark's throughput rounds: no target always runs right after the same one, first or
// last (a target's position changed its figures; see docs/performance.md, the fifth and sixth runs).
import { describe, expect, it } from "vitest";
import { roundOrder } from "../../bench/sections/throughput.js";

const TARGETS = ["M", "R", "likes", "likes-notrace", "one"] as const;

describe("the order of the benchmark's throughput rounds", () => {
  it("runs every target once a round", () => {
    for (let round = 0; round < 7; round++)
      expect([...roundOrder(TARGETS, round)].sort()).toEqual([...TARGETS].sort());
  });

  it("swaps the traced and untraced clusters between rounds, and changes who runs first", () => {
    const rounds = [0, 1, 2].map((round) => roundOrder(TARGETS, round));
    const tracedFirst = rounds.map((r) => r.indexOf("likes") < r.indexOf("likes-notrace"));
    expect(tracedFirst).toContain(true);
    expect(tracedFirst).toContain(false);
    expect(new Set(rounds.map((r) => r[0])).size).toBe(3);
    expect(new Set(rounds.map((r) => r.at(-1))).size).toBe(3);
  });
});
