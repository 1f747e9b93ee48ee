// The hot-path histogram against prom-client's own: the same observations make the same
// exposition, byte for byte, in both formats, exemplars included (their timestamps aside).
import fc from "fast-check";
import client from "prom-client";
import { describe, expect, it } from "vitest";
import { HotHistogram } from "../../src/telemetry/histogram.js";

const BOUNDS = [0.001, 0.01, 0.1, 1, 10];
const TRACE_IDS = ["0af7651916cd43dd8448eb211c80319c", "4bf92f3577b34da6a3ce929d0e0e4736"];

/** Exposition with exemplar timestamps (the wall clock at each observation) blanked. */
async function exposition(registry: client.Registry<client.OpenMetricsContentType>) {
  return (await registry.metrics()).replace(/(# \{[^}]*\} \S+) \S+/g, "$1 T");
}

const observation = fc.record({
  origin: fc.constantFrom("node1", "node2", "other"),
  path: fc.constantFrom("push", "anti-entropy"),
  // Bounds themselves, values between them, zero and past the last bound.
  value: fc.oneof(fc.constantFrom(0, ...BOUNDS), fc.double({ min: 0, max: 100, noNaN: true })),
  trace: fc.option(fc.constantFrom(...TRACE_IDS), { nil: undefined }),
});

describe("HotHistogram", () => {
  it("renders what prom-client's Histogram renders for the same observations", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(observation, { maxLength: 40 }), async (observations) => {
        const theirs = new client.Registry<client.OpenMetricsContentType>();
        theirs.setContentType(client.Registry.OPENMETRICS_CONTENT_TYPE);
        const ours = new client.Registry<client.OpenMetricsContentType>();
        ours.setContentType(client.Registry.OPENMETRICS_CONTENT_TYPE);
        const reference = new client.Histogram({
          name: "h_seconds",
          help: "h",
          labelNames: ["origin", "path"] as const,
          buckets: BOUNDS,
          enableExemplars: true,
          registers: [theirs],
        });
        const hot = new HotHistogram("h_seconds", "h", ["origin", "path"], BOUNDS, ours);
        for (const { origin, path, value, trace } of observations) {
          const labels = { origin, path };
          if (trace)
            reference.observe({
              labels,
              value,
              exemplarLabels: { trace_id: trace } as client.LabelValues<string>,
            });
          else reference.observe({ labels, value });
          hot.seriesOf(labels).observe(value, trace);
        }
        expect(await exposition(ours)).toBe(await exposition(theirs));
      }),
      { numRuns: 200 },
    );
  });

  it("shows a series without labels at zero before its first observation, as prom-client does", async () => {
    const theirs = new client.Registry<client.OpenMetricsContentType>();
    theirs.setContentType(client.Registry.OPENMETRICS_CONTENT_TYPE);
    const ours = new client.Registry<client.OpenMetricsContentType>();
    ours.setContentType(client.Registry.OPENMETRICS_CONTENT_TYPE);
    new client.Histogram({
      name: "c_seconds",
      help: "c",
      buckets: BOUNDS,
      enableExemplars: true,
      registers: [theirs],
    });
    new HotHistogram("c_seconds", "c", [], BOUNDS, ours).seriesOf({});
    expect(await exposition(ours)).toBe(await exposition(theirs));
  });

  it("hands out one series per label set, and ignores a value that is not a number", async () => {
    const registry = new client.Registry<client.OpenMetricsContentType>();
    registry.setContentType(client.Registry.OPENMETRICS_CONTENT_TYPE);
    const hot = new HotHistogram("h_seconds", "h", ["origin"], BOUNDS, registry);
    const series = hot.seriesOf({ origin: "node1" });
    expect(hot.seriesOf({ origin: "node1" })).toBe(series);
    expect(hot.seriesOf({ origin: "node2" })).not.toBe(series);
    series.observe(Number.NaN);
    series.observe(Number.POSITIVE_INFINITY);
    series.observe(0.5);
    expect([series.count, series.sum]).toEqual([1, 0.5]);
    hot.reset();
    expect(await registry.metrics()).not.toContain("h_seconds_count");
  });
});
