import { getNodeAutoInstrumentations } from "@opentelemetry/auto-instrumentations-node";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { NodeSDK } from "@opentelemetry/sdk-node";
import { defaultSampler } from "./sampler.js";

export interface TracingOptions {
  readonly nodeName: string;
  readonly version: string;
  /** New traces sampled per second when OTEL_TRACES_SAMPLER does not choose a sampler. */
  readonly tracesPerSecond: number;
}

export interface Tracing {
  /** Flushes buffered spans and stops exporting. */
  shutdown(): Promise<void>;
}

/**
 * Starts the OpenTelemetry NodeSDK: OTLP/HTTP export configured by the standard OTEL_*
 * variables (endpoint, protocol, sampler; OTEL_SDK_DISABLED=true turns it all off). Must run
 * before the node's modules load, so that http is patched when they import it.
 */
export function startTracing(options: TracingOptions): Tracing {
  // Instrumentations patch modules as soon as they are constructed: when tracing is off,
  // construct nothing (main.ts does not even load this module then).
  if (process.env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true")
    return { shutdown: () => Promise.resolve() };

  // The spec's default sampler samples everything; a ratio's cost grows with the load. Unless
  // OTEL_TRACES_SAMPLER chooses, new traces are rate-limited (sampler.ts).
  const chosen = (process.env.OTEL_TRACES_SAMPLER ?? "").trim() !== "";
  // Metrics are prom-client's and logs go to stdout: the SDK exports traces only.
  process.env.OTEL_METRICS_EXPORTER ??= "none";
  process.env.OTEL_LOGS_EXPORTER ??= "none";
  const sdk = new NodeSDK({
    ...(chosen ? {} : { sampler: defaultSampler(options.tracesPerSecond) }),
    resource: resourceFromAttributes({
      "service.name": "likes",
      "service.instance.id": options.nodeName,
      "service.version": options.version,
      ...kubernetesAttributes(),
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

/** Downward-API values a Kubernetes pod spec passes in, as resource attributes. */
function kubernetesAttributes(): Record<string, string> {
  const fromEnv: Record<string, string | undefined> = {
    "k8s.pod.name": process.env.K8S_POD_NAME,
    "k8s.namespace.name": process.env.K8S_NAMESPACE_NAME,
    "k8s.node.name": process.env.K8S_NODE_NAME,
    "k8s.pod.ip": process.env.K8S_POD_IP,
  };
  return Object.fromEntries(
    Object.entries(fromEnv).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ""),
  );
}
