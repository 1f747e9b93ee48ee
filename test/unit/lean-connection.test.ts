// Connections of the public port read without node:http while their requests are plain: answers
// in order, pipelined or split, the hand-over to node:http with the bytes already read, the
// server's graceful close, and clients that misbehave. The time limits are
// lean-connection-limits.test.ts.
import { describe, expect, it } from "vitest";
import type { PlainReply } from "../../src/http/plain-reply.js";
import { sendJson } from "../../src/http/respond.js";
import { HttpServer } from "../../src/http/server.js";
import { waitFor } from "../support/wait.js";
import {
  LIKE,
  client,
  closers,
  eachTestStartsClean,
  leanAnswer,
  plainLike,
  plainRead,
  served,
} from "./lean-connection-clients.js";

const other = (path = "/healthz"): string => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;

eachTestStartsClean();

/**
 * The node's own server with a plain handler that answers at once, or when `gate` opens; node:http
 * answers `/slow` when it opens too. `waiting()` counts the requests that reached the gate.
 */
async function startServer(
  gate?: Promise<void>,
): Promise<{ server: HttpServer; port: number; waiting: () => number }> {
  let waiting = 0;
  const held = (answer: () => void) => {
    waiting++;
    void gate?.then(answer);
  };
  const server = new HttpServer((req, res) => {
    const answer = () => sendJson(res, 200, { via: "node:http", url: req.url });
    if (req.url === "/slow" && gate) held(answer);
    else answer();
  });
  server.servePlain((request) => {
    if (!gate) return leanAnswer(request);
    return new Promise<PlainReply>((resolve) => held(() => resolve(leanAnswer(request))));
  });
  const port = await server.listen(0, "127.0.0.1");
  closers.push(() => server.close(0));
  return { server, port, waiting: () => waiting };
}

describe("a lean connection", () => {
  it("answers plain requests in order and hands the connection to node:http at the first other one", async () => {
    const { port } = await startServer();
    const c = await client(port);
    c.socket.write(plainLike());
    await waitFor("the like's answer", () => c.bodies().length === 1);
    c.socket.write(plainRead());
    await waitFor("the read's answer", () => c.bodies().length === 2);
    // Pipelined in one write: a read, another request and a read after it (node:http's now).
    c.socket.write(plainRead("post=p2") + other() + plainRead("post=p3"));
    await waitFor("three more answers", () => c.bodies().length === 5);
    expect(c.bodies()).toEqual([
      { via: "lean", route: "/like", query: null },
      { via: "lean", route: "/likes", query: "post=p1" },
      { via: "lean", route: "/likes", query: "post=p2" },
      { via: "node:http", url: "/healthz" },
      { via: "node:http", url: "/likes?post=p3" },
    ]);
    expect(c.text()).toMatch(
      /^HTTP\/1\.1 201 Created\r\ncontent-type: application\/json; charset=utf-8\r\ncontent-length: \d+\r\nDate: .+ GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n/,
    );
    expect(c.ended()).toBe(false);
    c.socket.destroy();
  });

  it("reads a request that comes in pieces, and a chunked one handed over with its body", async () => {
    const { port } = await startServer();
    const c = await client(port);
    const bytes = plainLike();
    for (const piece of [
      bytes.slice(0, 7),
      bytes.slice(7, 60),
      bytes.slice(60, -3),
      bytes.slice(-3),
    ]) {
      c.socket.write(piece);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor("the like's answer", () => c.bodies().length === 1);
    const chunked = `POST /like HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${LIKE.length.toString(16)}\r\n${LIKE}\r\n0\r\n\r\n`;
    // Sent apart, so that they may arrive apart (the answers are the same either way).
    c.socket.write(chunked.slice(0, 40));
    await new Promise((resolve) => setImmediate(resolve));
    c.socket.write(chunked.slice(40) + plainRead());
    await waitFor("two more answers", () => c.bodies().length === 3);
    expect(c.bodies().slice(1)).toEqual([
      { via: "node:http", url: "/like" },
      { via: "node:http", url: "/likes?post=p1" },
    ]);
    c.socket.destroy();
  });

  it("hands a like's answer to the socket after the work its turn queued first (the push)", async () => {
    // As the node's like: the commit's continuation queues the push to peers for this turn,
    // then answers. What it queued runs while the answer still waits in the socket.
    let unsentWhenQueuedWorkRan = -1;
    const server = new HttpServer(() => undefined);
    server.servePlain((request, socket) => {
      const answer = Promise.resolve(leanAnswer(request));
      void answer.then(() =>
        process.nextTick(() => (unsentWhenQueuedWorkRan = socket.writableLength)),
      );
      return answer;
    });
    const port = await server.listen(0, "127.0.0.1");
    closers.push(() => server.close(0));
    const c = await client(port);
    c.socket.write(plainLike());
    await waitFor("the answer", () => c.bodies().length === 1);
    expect(unsentWhenQueuedWorkRan).toBeGreaterThan(0);
  });

  it("closes after the answer when the client asks, and when the client ends", async () => {
    const { port } = await startServer();
    const a = await client(port);
    a.socket.write(plainRead("post=p1", "Connection: close\r\n"));
    await waitFor("the connection closed", () => a.ended());
    expect(a.text()).toContain("Connection: close\r\n\r\n");
    expect(a.bodies()).toHaveLength(1);
    const b = await client(port);
    b.socket.end(plainLike() + plainRead());
    await waitFor("the connection closed", () => b.ended());
    expect(b.bodies()).toHaveLength(2);
  });

  it("keeps answering in order while a like waits, and on close answers it with Connection: close", async () => {
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const { server, port, waiting } = await startServer(gate);
    const busy = await client(port);
    const idle = await client(port);
    busy.socket.write(plainLike() + plainRead());
    await waitFor("the like to wait at the gate", () => waiting() === 1);
    expect(busy.text()).toBe("");
    const closed = server.close(5_000);
    await waitFor("the idle connection closed", () => idle.ended());
    open();
    await closed;
    await waitFor("the client's end", () => busy.ended());
    // The like was answered; the read after it was read while closing, and refused.
    expect(busy.bodies()).toEqual([
      { via: "lean", route: "/like", query: null },
      { error: { code: "shutting_down", message: expect.any(String) as string } },
    ]);
    expect(busy.text()).toContain("HTTP/1.1 503 Service Unavailable");
    // One Connection header, as node:http writes it.
    const refusal = busy.text().slice(busy.text().indexOf("HTTP/1.1 503"));
    expect(refusal.match(/^connection:/gim)).toHaveLength(1);
    expect(busy.ended()).toBe(true);
  });

  it.each([
    ["one that may be plain", "GET /likes?post=a HTTP/1.1\r\nHo"],
    ["one that cannot", "GET /healthz HTTP/1.1\r\nHo"],
  ])(
    "on close, answers a pending like with Connection: close and drops an unfinished request behind it: %s",
    async (_, unfinished) => {
      let open: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (open = resolve));
      const { server, port, waiting } = await startServer(gate);
      const c = await client(port);
      c.socket.write(`${plainLike()}\r\n${unfinished}`);
      await waitFor("the like to wait at the gate", () => waiting() === 1);
      // A cut deadline far past the wait below: a connection handed to node:http to wait on
      // would hold the close until the cut, and the wait would fail.
      let closed = false;
      void server.close(60_000).then(() => (closed = true));
      open();
      await waitFor("the server to close", () => closed, { timeoutMs: 5_000 });
      await waitFor("the client's end", () => c.ended());
      expect(c.bodies()).toEqual([{ via: "lean", route: "/like", query: null }]);
      // The like's answer closes the connection: nothing is handed to node:http to wait on.
      expect(c.text()).toContain("Connection: close\r\n\r\n");
    },
  );
});

describe("a lean connection, against clients that misbehave", () => {
  it("on close, lets node:http answer a request it was handed", async () => {
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const { server, port, waiting } = await startServer(gate);
    const c = await client(port);
    c.socket.write(other("/slow"));
    await waitFor("node:http to hold the request at the gate", () => waiting() === 1);
    const closed = server.close(5_000);
    open();
    await closed;
    await waitFor("the client's end", () => c.ended());
    expect(c.bodies()).toEqual([{ via: "node:http", url: "/slow" }]);
    expect(c.text()).toMatch(/connection: close/i);
  });

  it("reads nothing after its last answer (Connection: close)", async () => {
    const { port } = await startServer();
    const c = await client(port);
    c.socket.on("error", () => undefined);
    c.socket.write(plainRead("post=p1", "Connection: close\r\n"));
    await waitFor("the answer", () => c.bodies().length === 1);
    c.socket.write(plainLike());
    await waitFor("the connection closed", () => c.ended());
    expect(served).toBe(1);
  });

  it("skips empty lines between requests, as node:http does", async () => {
    const { port } = await startServer();
    const c = await client(port);
    c.socket.write(`${plainLike()}\r\n`);
    await waitFor("the answer", () => c.bodies().length === 1);
    c.socket.write(`\r\n${plainRead()}`);
    await waitFor("the second answer", () => c.bodies().length === 2);
    expect(c.bodies()).toEqual([
      { via: "lean", route: "/like", query: null },
      { via: "lean", route: "/likes", query: "post=p1" },
    ]);
    c.socket.destroy();
  });
});
