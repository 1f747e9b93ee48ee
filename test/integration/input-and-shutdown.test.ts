// What the public port promises about hostile input and about SIGTERM, against real processes.
import { mkdtempSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { TestCluster, allUp, clusterView } from "../support/cluster.js";
import { NodeProcess, countOf } from "../support/process.js";
import { rawConnection } from "../support/raw-connection.js";
import { waitFor } from "../support/wait.js";

/** Sends raw bytes as a request's body, with a Content-Length or chunked, and reads the answer. */
function post(
  url: string,
  path: string,
  body: Buffer,
  { chunked = false, agent }: { chunked?: boolean; agent?: Agent } = {},
): Promise<{ status: number; connection: string | undefined; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}${path}`,
      {
        method: "POST",
        agent: agent ?? false,
        headers: {
          "content-type": "application/json",
          ...(chunked ? {} : { "content-length": String(body.length) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            connection: res.headers.connection,
            body: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>,
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (chunked) {
      // Two writes: the body goes out in chunks, on the express path.
      req.write(body.subarray(0, 5));
      req.end(body.subarray(5));
    } else req.end(body);
  });
}

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("hostile input on the public port", () => {
  let node: NodeProcess;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "likes-input-"));
    dirs.push(dir);
    node = await NodeProcess.start({
      LIKES_NODE_NAME: "input",
      LIKES_DATA_DIR: dir,
      LIKES_HTTP_PORT: "0",
      LIKES_PEER_PORT: "0",
      LIKES_ADMIN_PORT: "0",
    });
  });
  afterAll(() => node.kill("SIGKILL"));

  it("refuses invalid UTF-8 with 400 invalid_utf8 in bodies (both paths, chunked) and queries", async () => {
    const bad = Buffer.concat([
      Buffer.from('{"post":"q'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('","user":"u"}'),
    ]);
    for (const chunked of [false, true]) {
      const res = await post(node.url, "/like", bad, { chunked });
      expect(res, `chunked: ${chunked}`).toMatchObject({
        status: 400,
        body: { error: { code: "invalid_utf8" } },
      });
    }
    const query = await fetch(`${node.url}/likes?post=%ff%fe`);
    expect(query.status).toBe(400);
    expect(await query.json()).toMatchObject({ error: { code: "invalid_utf8" } });
    const likeQuery = await post(
      node.url,
      "/like?consistency=%c3%28",
      Buffer.from('{"post":"q","user":"u"}'),
    );
    expect(likeQuery).toMatchObject({ status: 400, body: { error: { code: "invalid_utf8" } } });
    // What the altered body would have stored: q followed by two U+FFFD.
    expect(await countOf(node.url, "q\ufffd\ufffd")).toBe(0);
    expect(await countOf(node.url, "q")).toBe(0);
  });

  it("refuses a query of more than 1000 pairs with 400 rather than ignoring the rest", async () => {
    const path = `/like?${"&".repeat(1000)}consistency=bogus`;
    const body = Buffer.from('{"post":"many-pairs","user":"u"}');
    for (const chunked of [false, true]) {
      const res = await post(node.url, path, body, { chunked });
      expect(res, `chunked: ${chunked}`).toMatchObject({
        status: 400,
        body: { error: { code: "invalid_query", message: expect.stringMatching(/1000/) } },
      });
    }
    const get = await fetch(`${node.url}/likes?post=p${"&".repeat(1000)}`);
    expect(get.status).toBe(400);
    expect(await countOf(node.url, "many-pairs")).toBe(0);
    // 1000 pairs are still served.
    const counts = await fetch(`${node.url}/counts?${"&".repeat(998)}post=a&post=b`);
    expect(counts.status).toBe(200);
  });

  it("answers CONNECT with 405 and a JSON error instead of dropping the connection", async () => {
    const raw = rawConnection(Number(new URL(node.url).port));
    raw.socket.write("CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n");
    expect(await raw.ended).toEqual({ hadError: false });
    const answer = raw.received();
    expect(answer).toMatch(/^HTTP\/1\.1 405 Method Not Allowed\r\n/);
    expect(answer).toMatch(/\r\nallow: GET, HEAD, POST\r\n/i);
    expect(answer).toContain('"code":"method_not_allowed"');
    expect((await fetch(`${node.url}/healthz`)).status).toBe(200);
  });
});

describe("SIGTERM", () => {
  let cluster: TestCluster;
  afterEach(() => cluster?.stop());

  it("answers every request it read (202 for a cut wait), refuses later ones with 503, closes idle connections", async () => {
    // node2 is down, so consistency=all waits for an ack that never comes; only SIGTERM ends it.
    cluster = await TestCluster.start(2, { LIKES_WRITE_TIMEOUT_MS: "60000" });
    await cluster.kill(1);
    const node = cluster.node(0);
    const port = Number(new URL(node.url).port);

    const idle = rawConnection(port);
    idle.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    await waitFor("the idle connection's answer", () => idle.received().includes('"ok"'));

    const agent = new Agent({ keepAlive: true, maxSockets: 20 });
    const N = 10;
    const writes = Array.from({ length: N }, (_, i) =>
      post(node.url, "/like?consistency=all", Buffer.from(`{"post":"term","user":"u${i}"}`), {
        agent,
      }),
    );
    const pipelined = rawConnection(port);
    const like = '{"post":"term","user":"pipelined"}';
    pipelined.socket.write(
      `POST /like?consistency=all HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${like.length}\r\n\r\n${like}`,
    );
    // Every write is read and committed (the node's own seq counts them), none answered yet.
    const { origin } = await clusterView(node.adminUrl);
    await waitFor("the writes to be committed", async () => {
      const { vv } = await clusterView(node.adminUrl);
      return vv[origin] === N + 1;
    });

    const exit = node.kill("SIGTERM");
    await waitFor("the node to begin its shutdown", () =>
      node.lines.some((l) => l.message === "shutting down"),
    );
    // A request that arrives after SIGTERM on a connection still open.
    pipelined.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");

    const answers = await Promise.all(writes);
    for (const answer of answers)
      expect(answer).toMatchObject({
        status: 202,
        connection: "close",
        body: { post: "term", new: true, acks: 1, required: 2 },
      });
    expect(await pipelined.ended).toEqual({ hadError: false });
    const raw = pipelined.received();
    expect(raw).toMatch(/^HTTP\/1\.1 202 Accepted\r\n/);
    expect(raw).toMatch(
      /\r\n\r\n\{[^\r]*"acks":1[^\r]*\}HTTP\/1\.1 503 Service Unavailable\r\n(.+\r\n)*connection: close\r\n/i,
    );
    expect(raw).toContain('"code":"shutting_down"');
    expect(await idle.ended).toEqual({ hadError: false });
    expect(await exit).toBe(0);
    agent.destroy();
  });

  it("refuses a like whose body comes after the hand-off began: no like is left on it alone", async () => {
    cluster = await TestCluster.start(2);
    await allUp(cluster);
    const [node1, node2] = [cluster.node(0), cluster.node(1)];
    const { origin } = await clusterView(node1.adminUrl);
    // A body (on node:http's path) that comes late, as from a slow client: its head read (the
    // 100 Continue says so) before the stop.
    const slow = rawConnection(Number(new URL(node1.url).port));
    const like = '{"post":"late","user":"u1"}';
    slow.socket.write(
      "POST /like HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    await waitFor("the head to be read", () => slow.received().startsWith("HTTP/1.1 100 Continue"));
    const exit = node1.kill("SIGTERM");
    await waitFor(
      "the hand-off to begin",
      () => node1.lines.some((l) => l.message === "handing off to peers"),
      { timeoutMs: 5_000 },
    );
    slow.socket.write(`${like.length.toString(16)}\r\n${like}\r\n0\r\n\r\n`);
    expect(await slow.ended).toEqual({ hadError: false });
    const answer = slow.received().replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, "");
    expect(answer).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
    expect(answer).toContain('"code":"shutting_down"');
    expect(await exit).toBe(0);
    // Refused, not left behind: node1 wrote nothing that node2 lacks.
    expect((await clusterView(node2.adminUrl)).vv[origin] ?? 0).toBe(0);
    expect(await countOf(node2.url, "late")).toBe(0);
  });

  it("hands its peer, before it exits, the likes its push pace still held", async () => {
    // A pace far longer than the test, and no anti-entropy: only the stop's hand-off can move
    // the likes written after the first one.
    cluster = await TestCluster.start(2, { LIKES_PUSH_MS: "60000", LIKES_SYNC_MS: "3600000" });
    await allUp(cluster);
    const [node1, node2] = [cluster.node(0), cluster.node(1)];
    const N = 5;
    for (let i = 0; i < N; i++) {
      const res = await post(node1.url, "/like", Buffer.from(`{"post":"handoff","user":"u${i}"}`));
      expect(res.status).toBe(201);
    }
    await waitFor(
      "the first like to reach node2",
      async () => (await countOf(node2.url, "handoff")) === 1,
    );
    expect(await countOf(node2.url, "handoff")).toBe(1);
    expect(await node1.kill("SIGTERM")).toBe(0);
    expect(await countOf(node2.url, "handoff")).toBe(N);
  });
});
