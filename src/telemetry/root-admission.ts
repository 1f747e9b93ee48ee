// Admission of new traces before any span exists, over @opentelemetry/api alone.
//
// With the default sampler (a rate limit on new traces, sampler.ts) nearly every request of a
// busy node starts no trace; asking the SDK for a span only to be told so costs a span's ids,
// the sampler's call chain and a non-recording span object per request. tracing.ts registers
// the rate limit here; server-spans.ts asks it first, and starts no span at all for a request
// without a caller that it does not admit. Like the API's own tracer provider, this is one per
// process: the SDK it stands for is.
import { createContextKey, type Context } from "@opentelemetry/api";

/** On the context of a new trace that the rate limit already admitted: sample it, take no token. */
export const ADMITTED_ROOT = createContextKey("likes.admitted-root");

let admission: (() => boolean) | undefined;

/** Registers (or, with undefined, removes) the rate limit that admits new traces. */
export function setRootAdmission(admit: (() => boolean) | undefined): void {
  admission = admit;
}

/**
 * The context a new trace starts from, when one is admitted: undefined when the rate limit
 * refuses it, `parent` marked as admitted when it admits it, `parent` itself when no rate limit
 * is registered (no SDK, or OTEL_TRACES_SAMPLER chose the sampler).
 */
export function admitRoot(parent: Context): Context | undefined {
  if (admission === undefined) return parent;
  return admission() ? parent.setValue(ADMITTED_ROOT, true) : undefined;
}
