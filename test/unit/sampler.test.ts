import { ROOT_CONTEXT, SpanKind, TraceFlags, trace } from "@opentelemetry/api";
import { tracing } from "@opentelemetry/sdk-node";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ADMITTED_ROOT } from "../../src/telemetry/root-admission.js";
import { RateLimitedSampler, defaultSampler } from "../../src/telemetry/sampler.js";

const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";

function sampledAt(sampler: tracing.Sampler, context = ROOT_CONTEXT): boolean {
  const { decision } = sampler.shouldSample(
    context,
    TRACE_ID,
    "POST /like",
    SpanKind.SERVER,
    {},
    [],
  );
  return decision === tracing.SamplingDecision.RECORD_AND_SAMPLED;
}

/** A sampler on a clock the test moves. */
function onClock(perSecond: number) {
  let now = 1_000;
  const sampler = new RateLimitedSampler(perSecond, () => now);
  return {
    sampler,
    advance: (ms: number) => (now += ms),
    sample: () => sampledAt(sampler),
  };
}

describe("RateLimitedSampler", () => {
  it("samples one second's worth at once, then one per 1/rate seconds", () => {
    const s = onClock(10);
    const burst = Array.from({ length: 15 }, () => s.sample());
    expect(burst.filter(Boolean)).toHaveLength(10);
    expect(burst.slice(0, 10).every(Boolean)).toBe(true);
    s.advance(99);
    expect(s.sample()).toBe(false);
    s.advance(1);
    expect(s.sample()).toBe(true);
    expect(s.sample()).toBe(false);
  });

  it("never holds more than one second's worth, however long it was idle", () => {
    const s = onClock(5);
    s.advance(3_600_000);
    expect(Array.from({ length: 20 }, () => s.sample()).filter(Boolean)).toHaveLength(5);
  });

  it("samples at most rate × seconds + one second's worth over any run of requests", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 2000 }),
        (rate, gaps) => {
          const s = onClock(rate);
          let sampled = 0;
          let elapsed = 0;
          for (const gap of gaps) {
            s.advance(gap);
            elapsed += gap;
            if (s.sample()) sampled++;
          }
          expect(sampled).toBeLessThanOrEqual(Math.floor(rate + (rate * elapsed) / 1000));
          // And no fewer than the tokens it had: everything while they last.
          expect(sampled).toBeGreaterThanOrEqual(Math.min(gaps.length, rate));
        },
      ),
    );
  });

  it("shares its tokens with admit(), and samples an admitted root without taking another", () => {
    const s = onClock(2);
    expect(s.sampler.admit()).toBe(true);
    expect(s.sample()).toBe(true);
    expect(s.sample()).toBe(false);
    expect(s.sampler.admit()).toBe(false);
    // Admitted before its span: sampled though no token is left.
    expect(sampledAt(s.sampler, ROOT_CONTEXT.setValue(ADMITTED_ROOT, true))).toBe(true);
    s.advance(500);
    expect(sampledAt(s.sampler, ROOT_CONTEXT.setValue(ADMITTED_ROOT, true))).toBe(true);
    expect(s.sample()).toBe(true);
  });

  it("refuses a rate that is not positive", () => {
    expect(() => new RateLimitedSampler(0)).toThrow(RangeError);
    expect(() => new RateLimitedSampler(Number.NaN)).toThrow(RangeError);
  });
});

describe("defaultSampler", () => {
  const parent = (flags: number) =>
    trace.setSpanContext(ROOT_CONTEXT, {
      traceId: TRACE_ID,
      spanId: "b7ad6b7169203331",
      traceFlags: flags,
      isRemote: true,
    });

  it("follows a caller's decision, whatever the rate has left", () => {
    const { sampler } = defaultSampler(1);
    expect(sampledAt(sampler)).toBe(true);
    expect(sampledAt(sampler)).toBe(false);
    expect(sampledAt(sampler, parent(TraceFlags.SAMPLED))).toBe(true);
    expect(sampledAt(sampler, parent(TraceFlags.NONE))).toBe(false);
  });
});
