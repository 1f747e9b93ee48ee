// The OpenTelemetry NodeSDK: trace export over OTLP/HTTP, started before anything it patches.
import { getNodeAutoInstrumentations } from "@opentelemetry/auto-instrumentations-node";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { NodeSDK } from "@opentelemetry/sdk-node";
import { setRootAdmission } from "./root-admission.js";
import { defaultSampler } from "./sampler.js";

export interface TracingOptions {
  readonly nodeName: string;
  readonly version: string;
  /** New traces sampled per second when OTEL_TRACES_SAMPLER does not choose a sampler. */
  readonly tracesPerSecond: number;
  /** OTEL_TRACES_SAMPLER chose the sampler. */
  readonly samplerFromEnv: boolean;
  /** Resource attributes of the pod (config.ts reads them from the downward API). */
  readonly kubernetes: Readonly<Record<string, string>>;
}

export interface Tracing {
  /** Flushes buffered spans and stops exporting. */
  shutdown(): Promise<void>;
}

/**
 * Starts the OpenTelemetry NodeSDK: OTLP/HTTP export configured by the standard OTEL_*
 * variables (endpoint, protocol, sampler). Must run before the node's modules load, so that
 * http is patched when they import it. With OTEL_SDK_DISABLED=true, main.ts does not even load
 * this module: instrumentations patch modules as soon as they are constructed.
 * The SDK reads OTEL_METRICS_EXPORTER and OTEL_LOGS_EXPORTER itself; main.ts defaults them to
 * "none" (metrics are prom-client's, logs go to stdout).
 */
export function startTracing(options: TracingOptions): Tracing {
  // The spec's default sampler samples everything; a ratio's cost grows with the load. Unless
  // OTEL_TRACES_SAMPLER chooses, new traces are rate-limited (sampler.ts), and the rate limit
  // turns a request away before its span exists (root-admission.ts).
  const sampling = options.samplerFromEnv ? undefined : defaultSampler(options.tracesPerSecond);
  if (sampling) setRootAdmission(() => sampling.root.admit());
  const sdk = new NodeSDK({
    ...(sampling ? { sampler: sampling.sampler } : {}),
    resource: resourceFromAttributes({
      "service.name": "likes",
      "service.instance.id": options.nodeName,
      "service.version": options.version,
      ...options.kubernetes,
    }),
    // The OTel SDK's own detectors would add host and process noise; ours is explicit.
    resourceDetectors: [],
    instrumentations: [
      getNodeAutoInstrumentations({
        "@opentelemetry/instrumentation-fs": { enabled: false },
        "@opentelemetry/instrumentation-dns": { enabled: false },
        "@opentelemetry/instrumentation-net": { enabled: false },
        // Express 5 is instrumented twice (express and router): six spans a request for little
        // information, and most of the tracing cost. The server span is named by route instead.
        "@opentelemetry/instrumentation-express": { enabled: false },
        "@opentelemetry/instrumentation-router": { enabled: false },
        // Our logger adds trace_id and span_id itself; log records are not exported as OTLP.
        "@opentelemetry/instrumentation-winston": { enabled: false },
        // Our HTTP is traced by our own code at a fraction of this instrumentation's cost
        // (measured by the benchmark): SERVER spans of the public and admin ports in
        // server-spans.ts, and the peer exchanges by their likes.replicate.* spans, whose
        // context the peer client propagates itself.
        "@opentelemetry/instrumentation-http": { enabled: false },
      }),
    ],
  });
  sdk.start();
  return { shutdown: () => sdk.shutdown() };
}
