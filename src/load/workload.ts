// What a run sends: likes on Zipf-distributed posts by users drawn from a pool (so a pair comes
// back and is answered 200 `new:false`), and a share of the four kinds of read.
import { ZipfSampler } from "./zipf.js";

export const READ_KINDS = ["count", "detail", "counts", "liked"] as const;
export type ReadKind = (typeof READ_KINDS)[number];

export interface LoadRequest {
  readonly kind: "like" | ReadKind;
  readonly method: "GET" | "POST";
  /** Path and query, to append to a target's base URL. */
  readonly path: string;
  readonly body?: string;
  /** A like's pair, the body's fields (what a caller that checks acknowledged likes needs). */
  readonly like?: { readonly post: string; readonly user: string };
  /** Index of the target URL. */
  readonly target: number;
}

/** An answer's status, or why there was none (timeout, ECONNREFUSED, …). */
export type Outcome = { readonly status: number } | { readonly error: string };

/**
 * The `error` of a request the client gave up on (load's Ctrl-C while it waits for answers):
 * not a failure of the cluster, and whether a node took it is unknown. Counted as unanswered.
 */
export const ABANDONED = "aborted";

export interface WorkloadShape {
  readonly posts: number;
  readonly zipfExponent: number;
  readonly users: number;
  /** Share of requests that are reads, 0..1. */
  readonly readShare: number;
  readonly targets: number;
}

/** Posts a `/counts` read asks for: a feed page. */
export const COUNTS_PER_READ = 10;

export class Workload {
  private readonly zipf: ZipfSampler;
  private n = 0;

  constructor(
    private readonly shape: WorkloadShape,
    private readonly random: () => number,
  ) {
    this.zipf = new ZipfSampler(shape.posts, shape.zipfExponent);
  }

  /** The next request; targets are taken in turn. */
  next(): LoadRequest {
    const target = this.n++ % this.shape.targets;
    const post = this.post();
    if (this.random() >= this.shape.readShare) {
      const like = { post, user: this.user() };
      return {
        kind: "like",
        method: "POST",
        path: "/like",
        body: JSON.stringify(like),
        like,
        target,
      };
    }
    const kind = READ_KINDS[Math.floor(this.random() * READ_KINDS.length)] ?? "count";
    const p = encodeURIComponent(post);
    switch (kind) {
      case "count":
        return { kind, method: "GET", path: `/likes?post=${p}`, target };
      case "detail":
        return { kind, method: "GET", path: `/likes?post=${p}&detail=true`, target };
      case "liked":
        return {
          kind,
          method: "GET",
          path: `/likes?post=${p}&user=${encodeURIComponent(this.user())}`,
          target,
        };
      case "counts": {
        const page = [p];
        for (let i = 1; i < COUNTS_PER_READ; i++) page.push(encodeURIComponent(this.post()));
        return {
          kind,
          method: "GET",
          path: `/counts?${page.map((x) => `post=${x}`).join("&")}`,
          target,
        };
      }
    }
  }

  private post(): string {
    return `post-${this.zipf.rank(this.random())}`;
  }

  private user(): string {
    return `user-${1 + Math.floor(this.random() * this.shape.users)}`;
  }
}
