// The default trace sampler: a rate limit on new traces, parent-based.
import type { Attributes, Context, Link, SpanKind } from "@opentelemetry/api";
import { tracing } from "@opentelemetry/sdk-node";

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

  shouldSample(
    _context: Context,
    _traceId: string,
    _name: string,
    _kind: SpanKind,
    _attributes: Attributes,
    _links: Link[],
  ): tracing.SamplingResult {
    const now = this.now();
    this.tokens = Math.min(
      this.capacity,
      this.tokens + ((now - this.last) * this.perSecond) / 1000,
    );
    this.last = now;
    if (this.tokens < 1) return { decision: tracing.SamplingDecision.NOT_RECORD };
    this.tokens -= 1;
    return { decision: tracing.SamplingDecision.RECORD_AND_SAMPLED };
  }

  toString(): string {
    return `RateLimitedSampler{${this.perSecond}/s}`;
  }
}

/** The node's default: a sampled caller's trace is always followed; new traces are rate-limited. */
export function defaultSampler(perSecond: number): tracing.Sampler {
  return new tracing.ParentBasedSampler({ root: new RateLimitedSampler(perSecond) });
}
