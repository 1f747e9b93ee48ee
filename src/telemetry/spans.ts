// The spans of a like's journey, over @opentelemetry/api only (a no-op without an SDK, as in
// the simulation). See README, "Observability": likes.store, likes.replicate.push,
// likes.replicate.apply; and likes.replicate.sync, an anti-entropy exchange.
// The first two wrap work of the store and the replication core; the apply spans are made by
// the Metrics port's entriesApplied (telemetry/metrics.ts).
import { context, SpanKind, SpanStatusCode, trace, type Link, type Span } from "@opentelemetry/api";
import { nodeNameOf, type Entry } from "../crdt/index.js";
import type { ReplicationPath } from "./types.js";
import { spanContextOf } from "./trace-context.js";

const tracer = trace.getTracer("likes");
/** The SDK's default link limit: links past it would be dropped silently. */
export const MAX_LINKS = 128;

async function inSpan<T>(span: Span, fn: () => Promise<T>): Promise<T> {
  try {
    return await context.with(trace.setSpan(context.active(), span), fn);
  } catch (error) {
    span.recordException(error as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: String(error) });
    throw error;
  } finally {
    span.end();
  }
}

/** Committing a like: a child of the request's server span, when that one is sampled. */
export function storeSpan<T>(fn: () => Promise<T>): Promise<T> {
  // Under parent-based sampling a child of an unsampled span is never sampled: skip its cost.
  if (!trace.getActiveSpan()?.isRecording()) return fn();
  return inSpan(tracer.startSpan("likes.store", { kind: SpanKind.INTERNAL }), fn);
}

/**
 * One push batch: a producer span linking to every sampled entry's context (up to the link
 * limit, the rest counted), and a child of the first one, so that a like's trace shows its push.
 */
export function pushSpan<T>(
  peer: string,
  entries: readonly Entry[],
  fn: () => Promise<T>,
): Promise<T> {
  const links: Link[] = [];
  let linksDropped = 0;
  for (const entry of entries) {
    const ctx = spanContextOf(entry.traceparent);
    if (!ctx) continue;
    if (links.length < MAX_LINKS) links.push({ context: ctx });
    else linksDropped++;
  }
  const first = links[0]?.context;
  // A batch of unsampled likes belongs to no trace, and starts none.
  if (!first) return fn();
  const span = tracer.startSpan(
    "likes.replicate.push",
    {
      kind: SpanKind.PRODUCER,
      links,
      attributes: {
        "likes.peer": peer,
        "likes.entries": entries.length,
        "likes.links_dropped": linksDropped,
      },
    },
    trace.setSpanContext(context.active(), first),
  );
  return inSpan(span, fn);
}

/**
 * One anti-entropy exchange with a peer (its first page, and the entries that page brought): a
 * CLIENT span of its own trace, sampled like a new request. The apply spans of the entries it
 * brought link to it, and an injected fault that acted on its request marks it (markFault).
 * `describe` names what came back, once it has.
 */
export function syncSpan<T>(
  peer: string,
  fn: () => Promise<T>,
  describe: (result: T) => Readonly<Record<string, number | boolean>>,
): Promise<T> {
  const span = tracer.startSpan("likes.replicate.sync", {
    kind: SpanKind.CLIENT,
    root: true,
    attributes: { "likes.peer": peer },
  });
  if (!span.isRecording()) {
    span.end();
    return fn();
  }
  return inSpan(span, async () => {
    const result = await fn();
    span.setAttributes(describe(result));
    return result;
  });
}

/**
 * On the receiver, per sampled entry: a consumer span that is a child of the entry's own
 * context (the like's server span), linked to the batch that carried it.
 */
export function recordApplied(entries: readonly Entry[], path: ReplicationPath, now: number): void {
  const batch = trace.getSpan(context.active())?.spanContext();
  for (const entry of entries) {
    const parent = spanContextOf(entry.traceparent);
    if (!parent) continue;
    const span = tracer.startSpan(
      "likes.replicate.apply",
      {
        kind: SpanKind.CONSUMER,
        links: batch && trace.isSpanContextValid(batch) ? [{ context: batch }] : [],
        attributes: {
          "likes.origin": nodeNameOf(entry.origin),
          "likes.origin_id": entry.origin,
          "likes.seq": entry.seq,
          "likes.lag_ms": Math.max(0, now - entry.ts),
          "likes.path": path,
        },
      },
      trace.setSpanContext(context.active(), parent),
    );
    span.end();
  }
}

/**
 * An injected fault (LIKES_FAULTS) on a message sent inside the active span (a push, a sync): its
 * attributes as likes.fault.*, and an event named for what the fault did (delayed, dropped, cut).
 */
export function markFault(
  what: string,
  attributes: Readonly<Record<string, number | boolean>>,
): void {
  const span = trace.getActiveSpan();
  if (!span?.isRecording()) return;
  const prefixed: Record<string, number | boolean | string> = { "likes.fault.kind": what };
  for (const [key, value] of Object.entries(attributes)) prefixed[`likes.fault.${key}`] = value;
  span.setAttributes(prefixed);
  span.addEvent(`likes.fault.${what}`, prefixed);
}

/** What a snapshot's span tells once known: its size and the entries it holds. */
export type SnapshotAttributes = (bytes: number, entries: number) => void;

/**
 * A snapshot bootstrap (one span per snapshot asked of a peer): a trace of its own, with the
 * peer, and the bytes and entries once the peer has said them.
 */
export function snapshotSpan<T>(
  peer: string,
  fn: (attributes: SnapshotAttributes) => Promise<T>,
): Promise<T> {
  const span = tracer.startSpan(
    "likes.snapshot",
    { kind: SpanKind.CLIENT, root: true, attributes: { "likes.peer": peer } },
    context.active(),
  );
  return inSpan(span, () =>
    fn((bytes, entries) =>
      span.setAttributes({ "likes.snapshot.bytes": bytes, "likes.snapshot.entries": entries }),
    ),
  );
}
