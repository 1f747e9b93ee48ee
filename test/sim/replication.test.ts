import { describe, expect, it } from "vitest";
import { runScenario } from "./scenario.js";

// SIM_SEED=n replays one seed; SIM_SEEDS=n sets how many seeds run (850 in CI: about 510 as
// before ride runs, 340 ride runs; scenario.ts).
const only = process.env.SIM_SEED;
const count = Number(process.env.SIM_SEEDS ?? 850);
const seeds = only !== undefined ? [Number(only)] : Array.from({ length: count }, (_, i) => i + 1);

describe("deterministic simulation of replication", () => {
  it(
    `converges with no acknowledged like lost, over ${seeds.length} seeds`,
    { timeout: 600_000 },
    async () => {
      let events = 0;
      let acknowledged = 0;
      let rides = 0;
      let rideAcks = 0;
      for (const seed of seeds) {
        const result = await runScenario(seed);
        events += result.events;
        acknowledged += result.acknowledged;
        rides += result.rides;
        rideAcks += result.rideAcks;
        if (result.violations.length > 0) {
          const replay = `SIM_SEED=${seed} npx vitest run test/sim`;
          throw new Error(
            `seed ${seed} (${result.nodes} nodes, ${result.likes} likes) broke an invariant; replay: ${replay}\n` +
              result.violations.join("\n"),
          );
        }
      }
      expect(acknowledged).toBeGreaterThan(0);
      // The runs must reach the rides' code, and the pushers take and acknowledge what rode,
      // unless a few seeds alone run.
      if (only === undefined && seeds.length >= 50) {
        expect(rides).toBeGreaterThan(0);
        expect(rideAcks).toBeGreaterThan(0);
      }
      console.log(
        `simulated ${seeds.length} seeds: ${events} events, ${acknowledged} acknowledged likes, ` +
          `${rides} rides, ${rideAcks} pushes that acknowledged rides`,
      );
    },
  );

  it("replays a seed exactly", async () => {
    const a = await runScenario(42);
    const b = await runScenario(42);
    expect(b).toEqual(a);
  });
});
