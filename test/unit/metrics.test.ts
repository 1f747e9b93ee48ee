import { describe, expect, it } from "vitest";
import type { Entry, OriginId, PostId, UserId } from "../../src/crdt/index.js";
import {
  MAX_ORIGIN_LABELS,
  PromMetrics,
  OPENMETRICS_CONTENT_TYPE,
  PROMETHEUS_CONTENT_TYPE,
} from "../../src/telemetry/metrics.js";

const TRACE = "0af7651916cd43dd8448eb211c80319c";
const entry = (traceparent?: string): Entry => ({
  origin: "node1~abc" as OriginId,
  seq: 1,
  post: "p" as PostId,
  user: "u" as UserId,
  ts: 1000,
  ...(traceparent ? { traceparent } : {}),
});

function metrics(): PromMetrics {
  const m = new PromMetrics({
    setSize: () => 7,
    peers: () => [
      { peer: "node1", up: true, pending: 3, clockSkewSeconds: -61.5, unansweredBytes: 120 },
      {
        peer: "127.0.0.1:2",
        up: false,
        pending: 9,
        clockSkewSeconds: undefined,
        unansweredBytes: 0,
      },
    ],
  });
  m.requestServed("/like", "POST", 201, 0.002);
  m.likeAccepted(true);
  m.entriesApplied([entry(`00-${TRACE}-b7ad6b7169203331-01`), entry()], "push", 1250);
  m.entryConverged({ seq: 1, ts: 1000, traceparent: `00-${TRACE}-b7ad6b7169203331-01` }, 0.004);
  return m;
}

describe("metrics exposition", () => {
  it("serves OpenMetrics with trace-id exemplars when asked for it", async () => {
    const { contentType, body } = await metrics().render(
      "application/openmetrics-text; version=1.0.0,text/plain;q=0.5",
    );
    expect(contentType).toBe(OPENMETRICS_CONTENT_TYPE);
    expect(body.endsWith("# EOF\n")).toBe(true);
    expect(body).toMatch(
      new RegExp(
        `^likes_replication_lag_seconds_bucket\\{le="0.25",origin="node1",path="push"\\} 2 # \\{trace_id="${TRACE}"\\} 0.25 `,
        "m",
      ),
    );
    expect(body).toMatch(
      new RegExp(
        `^likes_convergence_seconds_bucket\\{le="0.005"\\} 1 # \\{trace_id="${TRACE}"\\}`,
        "m",
      ),
    );
  });

  it("labels lag by at most MAX_ORIGIN_LABELS node names, whatever peers send", async () => {
    const m = new PromMetrics({ setSize: () => 0, peers: () => [] });
    const forged = Array.from({ length: MAX_ORIGIN_LABELS + 100 }, (_, i) => ({
      ...entry(),
      origin: `forged${i}~abc` as OriginId,
    }));
    m.entriesApplied(forged, "push", 1250);
    const { body } = await m.render("text/plain");
    const labels = new Set(
      [...body.matchAll(/^likes_replication_lag_seconds_count\{origin="([^"]+)"/gm)].map(
        (x) => x[1],
      ),
    );
    expect(labels.size).toBe(MAX_ORIGIN_LABELS + 1);
    expect(labels.has("other")).toBe(true);
    expect(body).toMatch(
      /^likes_replication_lag_seconds_count\{origin="other",path="push"\} 100$/m,
    );
  });

  it("serves Prometheus text otherwise: counters named _total, no exemplars, no EOF", async () => {
    const { contentType, body } = await metrics().render("text/plain");
    expect(contentType).toBe(PROMETHEUS_CONTENT_TYPE);
    expect(body).toContain("# TYPE likes_requests_total counter\n");
    expect(body).toContain('likes_requests_total{route="/like",code="201"} 1\n');
    expect(body).toContain('likes_accepted_total{result="new"} 1\n');
    expect(body).toContain('likes_accepted_total{result="duplicate"} 0\n');
    expect(body).toContain("likes_set_size 7\n");
    expect(body).toContain('likes_replication_pending{peer="node1"} 3\n');
    expect(body).toContain('likes_peer_up{peer="127.0.0.1:2"} 0\n');
    expect(body).toContain('likes_peer_clock_skew_seconds{peer="node1"} -61.5\n');
    expect(body).not.toContain('likes_peer_clock_skew_seconds{peer="127.0.0.1:2"}');
    expect(body).not.toContain("# EOF");
    expect(body).not.toContain("trace_id");
    // A counter family is named like its samples: no sample lost its _total.
    for (const [, name, type] of body.matchAll(/^# TYPE (\S+) (\S+)$/gm))
      if (type === "counter") {
        expect(name).toMatch(/_total$/);
        expect(body, name).not.toMatch(new RegExp(`^${name!.replace(/_total$/, "")}(\\{| )`, "m"));
      }
  });
});
