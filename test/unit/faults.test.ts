import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import {
  FaultInputError,
  Faults,
  parseDuration,
  parseFaultRequest,
} from "../../src/replication/faults.js";
import type { Logger } from "../../src/telemetry/types.js";
import { ManualClock } from "../support/manual-clock.js";

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const log = (message: string, fields?: Readonly<Record<string, unknown>>) =>
    lines.push(`${message} ${String(fields?.peer)} ${String(fields?.kind)}`);
  return { lines, error: log, warn: log, info: log, debug: log };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof FaultInputError) return error.code;
    throw error;
  }
  return undefined;
}

describe("parseFaultRequest", () => {
  it("reads each kind and the optional duration", () => {
    expect(parseFaultRequest("node2", { delay: { ms: 200, jitterMs: 50 }, for: "30s" })).toEqual({
      peer: "node2",
      specs: { delay: { ms: 200, jitterMs: 50 } },
      forMs: 30_000,
    });
    expect(parseFaultRequest("*", { delay: { ms: 5 } }).specs.delay).toEqual({
      ms: 5,
      jitterMs: 0,
    });
    expect(parseFaultRequest("*", { drop: 0.3 }).specs).toEqual({ drop: 0.3 });
    expect(parseFaultRequest("n", { cut: "in" }).specs).toEqual({ cut: "in" });
    expect(parseFaultRequest("n", { pause: "pushes", for: "500ms" })).toEqual({
      peer: "n",
      specs: { pause: "pushes" },
      forMs: 500,
    });
    expect(parseFaultRequest("n", { cut: "both", drop: 1 }).specs).toEqual({
      cut: "both",
      drop: 1,
    });
  });

  it.each([
    ["a non-object", ["*", [1]]],
    ["null", ["*", null]],
    ["no fault", ["*", { for: "1s" }]],
    ["an unknown key", ["*", { drop: 0.5, lose: 1 }]],
    ["an unknown delay key", ["*", { delay: { ms: 1, jitter: 2 } }]],
    ["a delay without ms", ["*", { delay: {} }]],
    ["a negative delay", ["*", { delay: { ms: -1 } }]],
    ["a fractional delay", ["*", { delay: { ms: 1.5 } }]],
    ["a delay past a minute", ["*", { delay: { ms: 60_001 } }]],
    ["a delay as a string", ["*", { delay: "200ms" }]],
    ["a drop of 0", ["*", { drop: 0 }]],
    ["a drop above 1", ["*", { drop: 1.5 }]],
    ["a drop as a string", ["*", { drop: "0.5" }]],
    ["a cut sideways", ["*", { cut: "sideways" }]],
    ["a pause of syncs", ["*", { pause: "syncs" }]],
    ["a bad duration", ["*", { cut: "both", for: "30" }]],
    ["a zero duration", ["*", { cut: "both", for: "0s" }]],
    ["a duration past a day", ["*", { cut: "both", for: "25h" }]],
    ["a bad peer name", ["-x", { cut: "both" }]],
    ["an empty peer name", ["", { cut: "both" }]],
  ] as const)("refuses %s with invalid_fault", (_, [peer, body]) => {
    expect(codeOf(() => parseFaultRequest(peer, body))).toBe("invalid_fault");
  });

  it("says what it refused as the request had it, a number past JSON's range too", () => {
    // JSON.parse("1e400") is Infinity, which JSON.stringify writes as null.
    expect(() => parseFaultRequest("*", { drop: Infinity })).toThrow(/\(got Infinity\)/);
    expect(() => parseFaultRequest("*", { delay: { ms: -Infinity } })).toThrow(/\(got -Infinity\)/);
    expect(() => parseFaultRequest("*", { drop: "0.5" })).toThrow(/\(got "0\.5"\)/);
  });

  it("reads durations", () => {
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("2m")).toBe(120_000);
    expect(parseDuration("1h")).toBe(3_600_000);
    expect(() => parseDuration(30)).toThrow(FaultInputError);
  });
});

describe("Faults", () => {
  const request = (peer: string, body: unknown) => parseFaultRequest(peer, body);

  it("applies a peer's own fault, else the one for *, and nothing to an unnamed peer but *", () => {
    const faults = new Faults(new ManualClock(), () => 0.5, recordingLogger());
    expect(faults.outgoing("node2")).toEqual({ cut: false, drop: false, delayMs: 0 });
    faults.set(request("node2", { cut: "out" }));
    faults.set(request("*", { delay: { ms: 100, jitterMs: 10 } }));
    expect(faults.outgoing("node2")).toEqual({ cut: true, drop: false, delayMs: 105 });
    expect(faults.outgoing("node3")).toEqual({ cut: false, drop: false, delayMs: 105 });
    expect(faults.outgoing(undefined)).toEqual({ cut: false, drop: false, delayMs: 105 });
    faults.set(request("node3", { cut: "in" }));
    expect(faults.refusesFrom("node3")).toBe(true);
    expect(faults.refusesFrom("node2")).toBe(false); // a cut "out" lets node2 in
    expect(faults.outgoing("node3").cut).toBe(false);
    expect(faults.list().map((f) => `${f.peer}/${f.kind}`)).toEqual([
      "*/delay",
      "node2/cut",
      "node3/cut",
    ]);
  });

  it("drops with the probability given", () => {
    let r = 0.29;
    const faults = new Faults(new ManualClock(), () => r, recordingLogger());
    faults.set(request("*", { drop: 0.3 }));
    expect(faults.outgoing("a").drop).toBe(true);
    r = 0.3;
    expect(faults.outgoing("a").drop).toBe(false);
  });

  it("pauses pushes to one peer or all", () => {
    const faults = new Faults(new ManualClock(), () => 0, recordingLogger());
    faults.set(request("node2", { pause: "pushes" }));
    expect(faults.pushesPaused("node2")).toBe(true);
    expect(faults.pushesPaused("node3")).toBe(false);
    expect(faults.pushesPaused(undefined)).toBe(false);
    faults.set(request("*", { pause: "pushes" }));
    expect(faults.pushesPaused(undefined)).toBe(true);
  });

  it("tells whether any fault touches what goes to a peer (nothing rides to it then)", () => {
    const faults = new Faults(new ManualClock(), () => 0, recordingLogger());
    expect(faults.touches("node2")).toBe(false);
    faults.set(request("node2", { delay: { ms: 10 } }));
    expect(faults.touches("node2")).toBe(true);
    expect(faults.touches("node3")).toBe(false);
    faults.set(request("*", { drop: 0.5 }));
    expect(faults.touches("node3")).toBe(true);
    expect(faults.touches(undefined)).toBe(true);
    faults.clear();
    expect(faults.touches("node2")).toBe(false);
  });

  it("ends a fault at its expiry, logs its start and end, and tells of each change", () => {
    const clock = new ManualClock();
    const logger = recordingLogger();
    let changes = 0;
    const faults = new Faults(
      clock,
      () => 0,
      logger,
      () => changes++,
    );
    const [set] = faults.set(request("node2", { cut: "both", for: "30s" }));
    expect(set?.until).toBe(new Date(clock.now() + 30_000).toISOString());
    expect(changes).toBe(1);
    clock.advance(29_999);
    expect(faults.refusesFrom("node2")).toBe(true);
    clock.advance(1);
    expect(faults.refusesFrom("node2")).toBe(false);
    expect(faults.list()).toEqual([]);
    expect(changes).toBe(2);
    expect(logger.lines).toEqual(["fault started node2 cut", "fault ended node2 cut"]);
  });

  it("replaces a fault of the same kind (its old expiry no longer applies) and clears", () => {
    const clock = new ManualClock();
    const faults = new Faults(clock, () => 0, recordingLogger());
    faults.set(request("node2", { cut: "both", for: "1s" }));
    faults.set(request("node2", { cut: "out" }));
    faults.set(request("node3", { drop: 1 }));
    clock.advance(2_000);
    expect(faults.outgoing("node2").cut).toBe(true);
    expect(faults.clear("node2")).toBe(1);
    expect(faults.list().map((f) => f.peer)).toEqual(["node3"]);
    expect(faults.clear()).toBe(1);
    expect(faults.outgoing("node3")).toEqual({ cut: false, drop: false, delayMs: 0 });
  });
});

describe("LIKES_FAULTS", () => {
  it("is off unless enabled, and refuses anything else", () => {
    expect(loadConfig({}, "n").faults).toBe(false);
    expect(loadConfig({ LIKES_FAULTS: "disabled" }, "n").faults).toBe(false);
    expect(loadConfig({ LIKES_FAULTS: "enabled" }, "n").faults).toBe(true);
    expect(() => loadConfig({ LIKES_FAULTS: "on" }, "n")).toThrow(ConfigError);
    expect(() => loadConfig({ LIKES_FAULTS: "on" }, "n")).toThrow(/LIKES_FAULTS/);
  });
});
