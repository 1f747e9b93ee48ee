// SERVER spans under the default sampler: a request that starts no trace and that the rate limit
// turns away gets no span; an admitted one is sampled on its one token; a caller's decision wins.
import { context, propagation, trace, TraceFlags } from "@opentelemetry/api";
import { node, tracing } from "@opentelemetry/sdk-node";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { setRootAdmission } from "../../src/telemetry/root-admission.js";
import { RateLimitedSampler } from "../../src/telemetry/sampler.js";
import { withServerSpans } from "../../src/telemetry/server-spans.js";
import { waitFor } from "../support/wait.js";

const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
const CALLER = "b7ad6b7169203331";

let now = 0;
const root = new RateLimitedSampler(2, () => now);
const exporter = new tracing.InMemorySpanExporter();
const parentBased = new tracing.ParentBasedSampler({ root });
/** Spans the SDK was asked to start (each one asks the sampler). */
let started = 0;
const provider = new node.NodeTracerProvider({
  sampler: {
    shouldSample: (...args) => {
      started++;
      return parentBased.shouldSample(...args);
    },
  },
  spanProcessors: [new tracing.SimpleSpanProcessor(exporter)],
});
let server: Server;
let base: string;
let served = 0;

beforeAll(async () => {
  // The context manager and the W3C propagator, as the NodeSDK registers them.
  provider.register();
  setRootAdmission(() => root.admit());
  server = createServer(
    withServerSpans((_req, res) => {
      served++;
      // What the likes' own spans ask: is there a recording span to hang under?
      res.end(String(trace.getActiveSpan()?.isRecording() ?? false));
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  setRootAdmission(undefined);
  await new Promise((resolve) => server.close(resolve));
  await provider.shutdown();
  trace.disable();
  context.disable();
  propagation.disable();
});

beforeEach(() => {
  // A full bucket: two new traces, then none until the test's clock moves.
  now += 10_000;
  exporter.reset();
  served = 0;
  started = 0;
});

async function get(traceparent?: string): Promise<string> {
  const res = await fetch(`${base}/x`, {
    headers: traceparent === undefined ? {} : { traceparent },
  });
  return res.text();
}

/** The finished spans, once `count` have ended (a span ends on its response's 'close'). */
function finished(count: number) {
  return waitFor(`${count} finished spans`, async () => {
    await provider.forceFlush();
    const spans = exporter.getFinishedSpans();
    return spans.length >= count ? spans : undefined;
  });
}

describe("withServerSpans under the rate limit", () => {
  it("admits one second's worth of new traces, each on one token, and starts no span for the rest", async () => {
    const recording = [];
    for (let i = 0; i < 5; i++) recording.push(await get());
    expect(served).toBe(5);
    expect(started).toBe(2);
    expect(recording).toEqual(["true", "true", "false", "false", "false"]);
    expect(await finished(2)).toHaveLength(2);
  });

  it("follows a sampled caller with no token left, and never samples an unsampled one", async () => {
    for (let i = 0; i < 2; i++) await get();
    const sampled = `00-${TRACE_ID}-${CALLER}-0${TraceFlags.SAMPLED}`;
    expect(await get(sampled)).toBe("true");
    now += 10_000;
    expect(await get(`00-${TRACE_ID}-${CALLER}-00`)).toBe("false");
    const child = (await finished(3)).find((s) => s.spanContext().traceId === TRACE_ID);
    expect(child?.parentSpanContext?.spanId).toBe(CALLER);
    // The unsampled caller took no token: two new traces are still admitted.
    expect([await get(), await get(), await get()]).toEqual(["true", "true", "false"]);
  });
});
