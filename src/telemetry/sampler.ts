// The default trace sampler: a rate limit on new traces, parent-based.
import type { Attributes, Context, Link, SpanKind } from "@opentelemetry/api";
import { tracing } from "@opentelemetry/sdk-node";
import { ADMITTED_ROOT } from "./root-admission.js";

/**
 * Samples at most `perSecond` new traces a second (a token bucket holding one second's worth):
 * every request of a quiet node, a bounded number of a busy one. A ratio sampler's cost grows
 * with the load instead: at 10% a sampled like costs about 1 ms of the node's CPU (spans,
 * export, garbage), a third of its POST throughput at a few thousand likes a second.
 */
export class RateLimitedSampler implements tracing.Sampler {
  private readonly capacity: number;
  private tokens: number;
  private last: number;

  constructor(
    private readonly perSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(perSecond > 0)) throw new RangeError(`perSecond must be positive (got ${perSecond})`);
    this.capacity = Math.max(1, perSecond);
    this.tokens = this.capacity;
    this.last = now();
  }

  /** Takes a token for a new trace, if one is left. */
  admit(): boolean {
    const now = this.now();
    this.tokens = Math.min(
      this.capacity,
      this.tokens + ((now - this.last) * this.perSecond) / 1000,
    );
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  shouldSample(
    context: Context,
    _traceId: string,
    _name: string,
    _kind: SpanKind,
    _attributes: Attributes,
    _links: Link[],
  ): tracing.SamplingResult {
    // A request that server-spans.ts admitted already holds its token.
    const sampled = context.getValue(ADMITTED_ROOT) === true || this.admit();
    return {
      decision: sampled
        ? tracing.SamplingDecision.RECORD_AND_SAMPLED
        : tracing.SamplingDecision.NOT_RECORD,
    };
  }

  toString(): string {
    return `RateLimitedSampler{${this.perSecond}/s}`;
  }
}

/**
 * The node's default: a sampled caller's trace is always followed; new traces are rate-limited,
 * by `root`, which also admits requests before their span (root-admission.ts).
 */
export function defaultSampler(perSecond: number): {
  readonly sampler: tracing.Sampler;
  readonly root: RateLimitedSampler;
} {
  const root = new RateLimitedSampler(perSecond);
  return { sampler: new tracing.ParentBasedSampler({ root }), root };
}
