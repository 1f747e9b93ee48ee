import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { TestCluster, allUp } from "../support/cluster.js";
import { OtlpReceiver, SPAN_KIND, type ReceivedSpan } from "../support/otlp-receiver.js";
import { NodeProcess, postLike } from "../support/process.js";
import { freePort } from "../support/tcp-proxy.js";
import { metricSum } from "../support/metrics.js";
import { waitFor } from "../support/wait.js";

let cluster: TestCluster | undefined;
let receiver: OtlpReceiver | undefined;
/** Lone nodes of the running test, and their data directories. */
const lone: { node: NodeProcess; dir: string }[] = [];
afterEach(async () => {
  await cluster?.stop();
  await receiver?.close();
  for (const { node, dir } of lone.splice(0)) {
    await node.kill("SIGKILL"); // every test stops its node; this is for one that failed first
    rmSync(dir, { recursive: true, force: true });
  }
  cluster = undefined;
  receiver = undefined;
});

/** Tracing on, exported quickly; node2 speaks http/json, the others http/protobuf. */
async function tracedCluster(env: Record<string, string> = {}): Promise<TestCluster> {
  receiver = await OtlpReceiver.start();
  return TestCluster.start(
    3,
    {
      OTEL_SDK_DISABLED: "false",
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: "100",
      LOG_LEVEL: "debug",
      ...env,
    },
    (i) => ({ OTEL_EXPORTER_OTLP_PROTOCOL: i === 1 ? "http/json" : "http/protobuf" }),
  );
}

/** One node on free ports with a data directory of its own, both gone after the test. */
async function loneNode(name: string, env: Record<string, string>): Promise<NodeProcess> {
  const dir = mkdtempSync(join(tmpdir(), `likes-${name}-`));
  const node = await NodeProcess.start({
    LIKES_HTTP_PORT: "0",
    LIKES_ADMIN_PORT: "0",
    LIKES_DATA_DIR: dir,
    ...env,
  });
  lone.push({ node, dir });
  return node;
}

/** A client span context the test controls, sampled: the like's trace gets this trace id. */
function clientContext(): { traceId: string; spanId: string; header: string } {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  return { traceId, spanId, header: `00-${traceId}-${spanId}-01` };
}

async function likeWithTrace(
  url: string,
  post: string,
  user: string,
  traceparent: string,
): Promise<number> {
  const res = await fetch(`${url}/like`, {
    method: "POST",
    headers: { "content-type": "application/json", traceparent },
    body: JSON.stringify({ post, user }),
  });
  return res.status;
}

const instance = (s: ReceivedSpan) => s.resource["service.instance.id"];

/**
 * Waits for the like's trace to hold an apply span on every node but the origin, and the
 * origin's server span: that one ends with the response and may be exported after the applies.
 */
async function traceOfLike(traceId: string, receivers: string[]): Promise<ReceivedSpan[]> {
  return waitFor(
    `apply spans from ${receivers.join(", ")} and the server span in trace ${traceId}`,
    () => {
      const spans = receiver!.trace(traceId);
      const applied = new Set(
        spans.filter((s) => s.name === "likes.replicate.apply").map(instance),
      );
      const served = spans.some((s) => s.name === "POST /like" && s.kind === SPAN_KIND.SERVER);
      return served && receivers.every((n) => applied.has(n)) ? spans : undefined;
    },
    { timeoutMs: 15_000 },
  );
}

function expectJoinedTrace(spans: ReceivedSpan[], client: { spanId: string }): ReceivedSpan {
  const server = spans.find((s) => s.name === "POST /like" && s.kind === SPAN_KIND.SERVER);
  expect(server, "the server span of POST /like").toBeDefined();
  expect(server!.parentSpanId).toBe(client.spanId);
  expect(instance(server!)).toBe("node1");
  expect(server!.resource["service.name"]).toBe("likes");
  expect(server!.attributes).toMatchObject({
    "http.request.method": "POST",
    "http.route": "/like",
    "url.path": "/like",
    "http.response.status_code": 201,
    "network.protocol.version": "1.1",
  });
  const store = spans.find((s) => s.name === "likes.store");
  expect(store?.parentSpanId).toBe(server!.spanId);
  const applies = spans.filter((s) => s.name === "likes.replicate.apply");
  for (const apply of applies) {
    expect(apply.kind).toBe(SPAN_KIND.CONSUMER);
    expect(apply.parentSpanId, "apply is a child of the like's server span").toBe(server!.spanId);
    expect(apply.attributes).toMatchObject({ "likes.origin": "node1", "likes.seq": 1 });
    expect(apply.attributes["likes.lag_ms"]).toEqual(expect.any(Number));
  }
  expect(new Set(spans.map(instance))).toEqual(new Set(["node1", "node2", "node3"]));
  return server!;
}

describe("tracing a like across the cluster", () => {
  it("puts spans from all three nodes in the like's trace, over protobuf and JSON", async () => {
    cluster = await tracedCluster();
    const client = clientContext();
    expect(await likeWithTrace(cluster.urls[0]!, "traced", "alice", client.header)).toBe(201);
    const spans = await traceOfLike(client.traceId, ["node2", "node3"]);
    const server = expectJoinedTrace(spans, client);
    expect(new Set(receiver!.spans.map((s) => s.format))).toEqual(new Set(["protobuf", "json"]));

    // The push batch is a producer span in the trace, linked to the entry it carried.
    const push = await waitFor("the push span", () =>
      receiver!.trace(client.traceId).find((s) => s.name === "likes.replicate.push"),
    );
    expect(push.kind).toBe(SPAN_KIND.PRODUCER);
    expect(push.links).toContainEqual({ traceId: client.traceId, spanId: server.spanId });

    // The log lines written while handling it carry its trace id.
    const accepted = cluster.node(0).lines.find((l) => l.message === "like accepted");
    expect(accepted).toMatchObject({ trace_id: client.traceId, post: "traced", user: "alice" });

    // Its lag shows on the receivers' metrics with the trace id as an exemplar.
    const openMetrics = await waitFor("an exemplar on node2", async () => {
      const res = await fetch(`${cluster!.node(1).adminUrl}/metrics`, {
        headers: { accept: "application/openmetrics-text; version=1.0.0" },
      });
      const text = await res.text();
      return text.includes(`trace_id="${client.traceId}"`) ? text : undefined;
    });
    expect(openMetrics).toMatch(
      new RegExp(
        `^likes_replication_lag_seconds_bucket\\{[^}]*origin="node1"[^}]*\\} \\d+ # \\{trace_id="${client.traceId}"\\}`,
        "m",
      ),
    );
    // On the origin, its convergence once both peers' acknowledgements are in: they may come
    // after the receivers exported their apply spans.
    const origin = await waitFor("an exemplar on node1", async () => {
      const res = await fetch(`${cluster!.node(0).adminUrl}/metrics`, {
        headers: { accept: "application/openmetrics-text" },
      });
      const text = await res.text();
      return text.includes(`trace_id="${client.traceId}"`) ? text : undefined;
    });
    expect(origin).toContain(`trace_id="${client.traceId}"`);
  });

  it("joins the trace when a cut-off node gets the like by anti-entropy after healing", async () => {
    cluster = await tracedCluster();
    cluster.isolate(2);
    const client = clientContext();
    expect(await likeWithTrace(cluster.urls[0]!, "late", "bob", client.header)).toBe(201);
    await traceOfLike(client.traceId, ["node2"]);
    expect(receiver!.trace(client.traceId).some((s) => instance(s) === "node3")).toBe(false);
    cluster.heal(2);
    const spans = await traceOfLike(client.traceId, ["node2", "node3"]);
    expectJoinedTrace(spans, client);
  });

  it("joins the trace when the like rides on answers to its peers' pushes", async () => {
    // A long pace: node3 (whose origin sorts last) waits 1.5 of it for its peers' pushes,
    // which a like every few ms on node1 and node2 keeps coming. No anti-entropy: after a sync
    // a node pushes what the peer lacks, its other peer's likes still on their way too.
    cluster = await tracedCluster({ LIKES_PUSH_MS: "100", LIKES_SYNC_MS: "600000" });
    const c = cluster;
    let loading = true;
    const load = async (i: number) => {
      for (let k = 0; loading; k++) await postLike(c.urls[i]!, "busy", `u${i}-${k}`);
    };
    const loads = [load(0), load(1)];
    try {
      const node3 = c.node(2).adminUrl;
      const pushes = () => metricSum(node3, "likes_gossip_messages_total", { kind: "deltas" });
      // The pushes of node1 and node2 go on at the pace, and node3 rides on their answers.
      // Two looks 200 ms apart with no push of node3's between them.
      let last: number | undefined;
      await waitFor(
        "node3 to ride on its peers' pushes",
        async () => {
          const seen = await pushes();
          const quiet = seen === last;
          last = seen;
          return quiet;
        },
        { intervalMs: 200 },
      );
      const before = await pushes();
      const client = clientContext();
      expect(await likeWithTrace(c.urls[2]!, "rides", "carol", client.header)).toBe(201);
      const spans = await traceOfLike(client.traceId, ["node1", "node2"]);
      // It went on answers: node3 pushed nothing of its own.
      expect(await pushes()).toBe(before);
      const server = spans.find((s) => s.name === "POST /like" && s.kind === SPAN_KIND.SERVER);
      expect(instance(server!)).toBe("node3");
      const applies = spans.filter((s) => s.name === "likes.replicate.apply");
      expect(new Set(applies.map(instance))).toEqual(new Set(["node1", "node2"]));
      for (const apply of applies) {
        expect(apply.parentSpanId, "apply is a child of the like's server span").toBe(
          server!.spanId,
        );
        expect(apply.attributes).toMatchObject({ "likes.origin": "node3", "likes.seq": 1 });
      }
    } finally {
      loading = false;
      await Promise.all(loads);
    }
  });
});

describe("tracing injected faults", () => {
  it("marks the push and the sync whose messages a fault cut, and the like still joins its trace", async () => {
    // No anti-entropy round of its own: one between the cut and the like would find node3's
    // peers cut and mark them down, and a down peer gets no push (so no push span) until it is
    // back. The failed push's retries still sync, and are the sync spans looked for below.
    cluster = await tracedCluster({ LIKES_FAULTS: "enabled", LIKES_SYNC_MS: "3600000" });
    // Nor a peer still down from the start (greeted before it listened, its retry pending).
    await allUp(cluster);
    // The admin requests carry a sampled caller, so that their spans are kept whatever the
    // rate limit has left after the failing syncs' traces.
    const admin = clientContext();
    const cut = await fetch(`${cluster.node(2).adminUrl}/faults/%2A`, {
      method: "PUT",
      headers: { "content-type": "application/json", traceparent: admin.header },
      body: JSON.stringify({ cut: "both" }),
    });
    expect(cut.status).toBe(200);
    const client = clientContext();
    expect(await likeWithTrace(cluster.urls[2]!, "cut", "carol", client.header)).toBe(201);

    // node3's push of the like: in the like's trace, marked as cut.
    const push = await waitFor("a push span marked as cut", () =>
      receiver!
        .trace(client.traceId)
        .find(
          (s) => s.name === "likes.replicate.push" && s.attributes["likes.fault.kind"] === "cut",
        ),
    );
    expect(instance(push)).toBe("node3");
    // node3's anti-entropy rounds: each a trace of its own, marked as cut too.
    const sync = await waitFor("a sync span of node3 marked as cut", () =>
      receiver!.spans.find(
        (s) =>
          s.name === "likes.replicate.sync" &&
          instance(s) === "node3" &&
          s.attributes["likes.fault.kind"] === "cut",
      ),
    );
    expect(sync.kind).toBe(SPAN_KIND.CLIENT);
    expect(sync.parentSpanId).toBe("");
    expect(sync.attributes["likes.peer"]).toEqual(expect.any(String));

    // Healed, the like reaches both peers, in its own trace.
    const heal = await fetch(`${cluster.node(2).adminUrl}/faults`, {
      method: "DELETE",
      headers: { traceparent: admin.header },
    });
    expect(heal.status).toBe(200);
    const spans = await traceOfLike(client.traceId, ["node1", "node2"]);
    expect(
      spans
        .filter((s) => s.name === "likes.replicate.apply")
        .map(instance)
        .sort(),
    ).toEqual(["node1", "node2"]);
    // The admin port's requests that made and healed the cut: SERVER spans named by route.
    await waitFor("node3's admin spans, named by route", () => {
      const names = receiver!
        .trace(admin.traceId)
        .filter((s) => instance(s) === "node3" && s.kind === SPAN_KIND.SERVER)
        .map((s) => s.name);
      return names.includes("PUT /faults/:peer") && names.includes("DELETE /faults");
    });
  });
});

describe("with the default sampler", () => {
  it("samples new traces up to LIKES_TRACES_PER_SECOND a second", async () => {
    receiver = await OtlpReceiver.start();
    const node = await loneNode("sampler", {
      OTEL_SDK_DISABLED: "false",
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: "50",
      LIKES_TRACES_PER_SECOND: "20",
    });
    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, i) => postLike(node.url, "busy", `u${i}`)),
    );
    const seconds = (performance.now() - started) / 1000;
    for (const answer of answers) expect(answer.status).toBe(201);
    // A graceful stop flushes what was buffered.
    expect(await node.kill("SIGTERM")).toBe(0);
    const roots = receiver.spans.filter(
      (s) => s.name === "POST /like" && s.kind === SPAN_KIND.SERVER && !s.parentSpanId,
    );
    // A second's worth at once (a quiet node traces every like), then 20 a second.
    expect(roots.length).toBeGreaterThanOrEqual(20);
    expect(roots.length).toBeLessThanOrEqual(Math.floor(20 + 20 * seconds));
  });
});

describe("with an unreachable collector", () => {
  it("still stops cleanly on SIGTERM within 5 s, losing only the last spans", async () => {
    const node = await loneNode("nocollector", {
      OTEL_SDK_DISABLED: "false",
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${await freePort()}`,
    });
    for (let i = 0; i < 5; i++)
      expect(await likeWithTrace(node.url, "p", `u${i}`, clientContext().header)).toBe(201);
    // 0 is within the node's own 5 s deadline: past it, the node exits 1 (main.ts).
    expect(await node.kill("SIGTERM")).toBe(0);
  });
});

describe("with OTEL_SDK_DISABLED=true", () => {
  it("works and exports nothing", async () => {
    receiver = await OtlpReceiver.start();
    const node = await loneNode("disabled", {
      OTEL_SDK_DISABLED: "true",
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: "50",
    });
    expect((await postLike(node.url, "quiet", "u", "")).status).toBe(201);
    // A graceful stop flushes whatever was buffered: after it, silence is final.
    expect(await node.kill("SIGTERM")).toBe(0);
    expect(receiver.requests).toBe(0);
    expect(receiver.spans).toEqual([]);
  });
});
