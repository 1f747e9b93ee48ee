// The time limits of a lean connection and what it holds: a client that does not read its
// answers, idle and slow clients (keep-alive, headers and request timeouts), and bytes that cannot
// become a plain request, handed to node:http at once.
import { createServer as createHttpServer } from "node:http";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { beforeEach, describe, expect, it } from "vitest";
import { LeanConnection } from "../../src/http/lean-connection.js";
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

eachTestStartsClean();

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
    // A connection left open (a keep-alive timeout of a minute) would hold the close that long.
    closers.push(() => {
      for (const connection of connections) connection.destroy();
      return new Promise((resolve) => net.close(() => resolve()));
    });
    return (net.address() as AddressInfo).port;
  }

  it("hands to node:http at once what cannot become a plain request, whole head or not", async () => {
    for (const start of [
      "GET /likes?post=p HTTP/1.1\nHost: x\n\n", // LF line ends: node:http refuses them
      "GET /likes?post=p HTTP/1.1\r\nHost: x\n", // one, and no end of the head yet
      "GET /likes?post=p HTTP/1.1\rHost: x\r\r", // CR line ends: node:http refuses them too
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", // a TLS ClientHello
      // A line node:http refuses, before any end of the head:
      "GET /likes?post=a HTTP\x03/1.1\r\nHost: x\r\n", // in the request line
      `POST /like HTTP/1.1\r\nHost: x\r\nContent-Length: 25\r\n${LIKE}`, // a body for a header
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

  it("answers a request the client's end cuts short with node:http's 400", async () => {
    for (const cut of [plainRead().slice(0, 20), plainLike().slice(0, -5)]) {
      const c = await client(await startLean());
      c.socket.end(cut);
      await waitFor("the connection closed", () => c.ended());
      expect(c.text(), cut).toMatch(
        /^HTTP\/1\.1 400 [^]*not a valid HTTP\/1\.1 request: Invalid EOF state/,
      );
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
