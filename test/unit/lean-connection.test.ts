// Connections of the public port read without node:http while their requests are plain: answers
// in order, pipelined or split, the hand-over to node:http with the bytes already read, the
// server's graceful close, and the time limits of idle and slow clients.
import { createServer as createHttpServer } from "node:http";
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LeanConnection } from "../../src/http/lean-connection.js";
import type { PlainReply } from "../../src/http/plain-reply.js";
import type { PlainRequest } from "../../src/http/plain-request.js";
import { sendJson } from "../../src/http/respond.js";
import { HttpServer } from "../../src/http/server.js";
import { waitFor } from "../support/wait.js";

const LIKE = '{"post":"p1","user":"u1"}';
const plainLike = (extra = ""): string =>
  `POST /like HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${extra}Content-Length: ${LIKE.length}\r\n\r\n${LIKE}`;
const plainRead = (query = "post=p1", extra = ""): string =>
  `GET /likes?${query} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;
const other = (path = "/healthz"): string => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;

/** Requests the lean path has served since the test began. */
let served = 0;

/** Answers of the lean path say so, and which request they answer; node:http's say so too. */
function leanAnswer(request: PlainRequest): PlainReply {
  served++;
  return {
    status: request.method === "POST" ? 201 : 200,
    body: JSON.stringify({ via: "lean", route: request.route, query: request.query ?? null }),
  };
}

interface Client {
  readonly socket: Socket;
  /** Everything received so far. */
  text(): string;
  /** The JSON bodies received so far, in order. */
  bodies(): unknown[];
  ended(): boolean;
}

function client(port: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    let received = "";
    let ended = false;
    const socket = connect(port, "127.0.0.1", () =>
      resolve({
        socket,
        text: () => received,
        bodies: () =>
          [...received.matchAll(/\r\n\r\n(\{[^\r]*?\})(?=HTTP\/1\.1|$)/g)].map(
            (m) => JSON.parse(m[1] ?? "") as unknown,
          ),
        ended: () => ended,
      }),
    );
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => (received += chunk));
    socket.on("close", () => (ended = true));
    socket.on("error", reject);
  });
}

const closers: (() => Promise<void>)[] = [];
beforeEach(() => {
  served = 0;
});
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

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

describe("a lean connection's limits", () => {
  /** The connections of the bare lean port, in the order they came. */
  const connections: LeanConnection[] = [];
  beforeEach(() => {
    connections.length = 0;
  });

  /** A bare lean port with short time limits; other requests go to node:http. */
  async function startLean(keepAliveTimeoutMs = 150): Promise<number> {
    const http = createHttpServer((_req, res) => res.end("{}"));
    const [nodeHttp] = http.listeners("connection") as ((socket: Socket) => void)[];
    const net: Server = createServer((socket) => {
      connections.push(
        new LeanConnection(socket, leanAnswer, (s) => nodeHttp?.call(http, s), {
          keepAliveTimeoutMs,
          headersTimeoutMs: 400,
          requestTimeoutMs: 900,
        }),
      );
    });
    await new Promise<void>((resolve) => net.listen(0, "127.0.0.1", resolve));
    closers.push(() => new Promise((resolve) => net.close(() => resolve())));
    return (net.address() as AddressInfo).port;
  }

  it("hands to node:http at once what cannot become a plain request, whole head or not", async () => {
    for (const start of [
      "GET /likes?post=p HTTP/1.1\nHost: x\n\n", // LF line ends: node:http refuses them
      "GET /likes?post=p HTTP/1.1\r\nHost: x\n", // one, and no end of the head yet
      "GET /likes?post=p HTTP/1.1\rHost: x\r\r", // CR line ends: node:http refuses them too
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", // a TLS ClientHello
    ]) {
      const c = await client(await startLean());
      c.socket.write(start, "latin1");
      // node:http's own 400 for bytes it cannot parse, not the lean path's 408 at the headers
      // timeout (400 ms here) after waiting for a CRLFCRLF.
      await waitFor("an answer", () => c.text().length > 0, { timeoutMs: 3_000 });
      expect(c.text()).toMatch(/^HTTP\/1\.1 400 /);
      c.socket.destroy();
    }
  });

  it("stops reading a client that does not read its answers", async () => {
    // A keep-alive timeout that a pause of the writer on a busy machine cannot reach.
    const c = await client(await startLean(60_000));
    c.socket.pause();
    // Requests of 4 KiB whose answers are as long: the server's writes back up, then its reads,
    // then the client's writes. Without that the server would read (and buffer) all of it.
    const request = Buffer.from(plainRead(`post=${"x".repeat(4000)}`));
    const limit = 128 * 1024 * 1024;
    let written = 0;
    const outcome = await waitFor(
      "the client's writes to block, or all of them to go through",
      async () => {
        while (written < limit && c.socket.write(request)) written += request.length;
        if (written >= limit) return "all read";
        if (c.ended()) return "closed";
        written += request.length;
        // Blocked for a whole second: the server reads nothing (it would read on, slowly, if it
        // buffered what it cannot answer yet).
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        return c.socket.writableNeedDrain ? "blocked" : false;
      },
      { timeoutMs: 30_000 },
    );
    expect(outcome).toBe("blocked");
    // What the server holds is its read-ahead, whatever the kernel's socket buffers hold.
    const [connection] = connections;
    expect(connection?.bufferedBytes).toBeLessThan(256 * 1024);
    // Reading again lets every answer through.
    c.socket.resume();
    const answers = written / request.length;
    await waitFor(
      "every answer",
      () => {
        const text = c.text();
        const one = text.indexOf("HTTP/1.1", 1);
        return one > 0 && text.length >= one * answers;
      },
      { timeoutMs: 30_000 },
    );
    expect(c.text().length).toBe(c.text().indexOf("HTTP/1.1", 1) * answers);
    c.socket.destroy();
  });

  it("closes a connection idle for the keep-alive timeout", async () => {
    const c = await client(await startLean());
    c.socket.write(plainRead());
    await waitFor("the answer", () => c.bodies().length === 1);
    await waitFor("the idle connection closed", () => c.ended(), { timeoutMs: 2_000 });
  });

  /** A 408 as node:http's clientError answer is (server.ts): JSON, and the connection closed. */
  const TIMED_OUT =
    /^HTTP\/1\.1 408 Request Timeout\r\n(?=[^]*\r\nconnection: close\r\n)[^]*\r\n\r\n\{"error":\{"code":"request_timeout",/;

  it("answers 408 to a request still incomplete at the headers timeout, however slowly it trickles", async () => {
    const c = await client(await startLean());
    const started = Date.now();
    const bytes = plainLike();
    let sent = 0;
    const trickle = setInterval(() => {
      if (!c.ended() && sent < bytes.length - 1) c.socket.write(bytes[sent++] ?? "");
    }, 100);
    try {
      await waitFor("the connection closed", () => c.ended(), { timeoutMs: 3_000 });
    } finally {
      clearInterval(trickle);
    }
    expect(c.text()).toMatch(TIMED_OUT);
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
  });

  it("answers 408 at the headers timeout to a head sent once, not at an idle timeout past it", async () => {
    // An idle timeout (60 s) far past the headers timeout (400 ms): the deadline is kept alone.
    const c = await client(await startLean(60_000));
    c.socket.write(plainLike().slice(0, 30));
    await waitFor("the 408", () => c.text().length > 0, { timeoutMs: 5_000 });
    expect(c.text()).toMatch(TIMED_OUT);
  });

  it("keeps a connection whose request came in pieces open for the keep-alive timeout after", async () => {
    // A keep-alive timeout that a busy machine cannot reach between the two checks below.
    const c = await client(await startLean(60_000));
    const bytes = plainLike();
    c.socket.write(bytes.slice(0, 30));
    await new Promise((resolve) => setTimeout(resolve, 50));
    c.socket.write(bytes.slice(30));
    await waitFor("the answer", () => c.bodies().length === 1);
    // Past the headers timeout (400 ms) that the piece armed: still open, and serving.
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(c.ended()).toBe(false);
    c.socket.write(plainRead());
    await waitFor("the second answer", () => c.bodies().length === 2);
  });

  it("gives a body the request timeout, not the headers timeout, and reads nothing after", async () => {
    const c = await client(await startLean());
    c.socket.on("error", () => undefined);
    const started = Date.now();
    const bytes = plainLike();
    c.socket.write(bytes.slice(0, -5));
    await waitFor("the 408", () => c.text().length > 0, { timeoutMs: 3_000 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(c.text()).toMatch(TIMED_OUT);
    // The rest of the like, sent after the 408, is not read: nothing is served.
    c.socket.write(bytes.slice(-5));
    await waitFor("the connection closed", () => c.ended());
    expect(served).toBe(0);
  });
});
