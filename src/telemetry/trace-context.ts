// W3C traceparent <-> OpenTelemetry span context, over @opentelemetry/api alone: entries carry
// the context of the request that made them, and every node that applies one joins its trace.
import { ROOT_CONTEXT, context, trace, TraceFlags, type SpanContext } from "@opentelemetry/api";
import { isTraceparent } from "../crdt/index.js";

/** The traceparent of the active span, when it is sampled (an unsampled one is not worth carrying). */
export function activeTraceparent(): string | undefined {
  const span = trace.getSpan(context.active());
  const ctx = span?.spanContext();
  if (!ctx || !trace.isSpanContextValid(ctx) || (ctx.traceFlags & TraceFlags.SAMPLED) === 0)
    return undefined;
  return `00-${ctx.traceId}-${ctx.spanId}-${ctx.traceFlags.toString(16).padStart(2, "0")}`;
}

/** `00-<trace id>-<span id>-<flags>`, fields at fixed offsets once the pattern holds. */
export function spanContextOf(traceparent: string | undefined): SpanContext | undefined {
  if (!isTraceparent(traceparent)) return undefined;
  const ctx: SpanContext = {
    traceId: traceparent.slice(3, 35),
    spanId: traceparent.slice(36, 52),
    traceFlags: parseInt(traceparent.slice(53, 55), 16),
    isRemote: true,
  };
  return trace.isSpanContextValid(ctx) ? ctx : undefined;
}

export function traceIdOf(traceparent: string | undefined): string | undefined {
  return spanContextOf(traceparent)?.traceId;
}

/**
 * Runs `fn` in the context of a caller's sampled span (a peer's push span, carried by its
 * frame), so that the spans `fn` starts join the caller's trace; as is otherwise.
 */
export function withCaller<T>(traceparent: string | undefined, fn: () => T): T {
  const caller = spanContextOf(traceparent);
  if (!caller || (caller.traceFlags & TraceFlags.SAMPLED) === 0) return fn();
  return context.with(trace.setSpanContext(ROOT_CONTEXT, caller), fn);
}
