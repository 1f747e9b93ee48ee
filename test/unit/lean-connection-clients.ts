// The clients and the plain handler of the lean connection's tests (lean-connection.test.ts,
// lean-connection-limits.test.ts): plain requests as bytes, a client that records what it
// receives, and what each test opened, closed after it.
import { connect, type Socket } from "node:net";
import { afterEach, beforeEach } from "vitest";
import type { PlainReply } from "../../src/http/plain-reply.js";
import type { PlainRequest } from "../../src/http/plain-request.js";

export const LIKE = '{"post":"p1","user":"u1"}';
export const plainLike = (extra = ""): string =>
  `POST /like HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${extra}Content-Length: ${LIKE.length}\r\n\r\n${LIKE}`;
export const plainRead = (query = "post=p1", extra = ""): string =>
  `GET /likes?${query} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;

/** Requests the lean path has served since the test began. */
export let served = 0;

/** Answers of the lean path say so, and which request they answer; node:http's say so too. */
export function leanAnswer(request: PlainRequest): PlainReply {
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

export function client(port: number): Promise<Client> {
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

/** What the running test opened, closed after it. */
export const closers: (() => Promise<void>)[] = [];

/**
 * Called once at the top of a test file: around each of its tests, the count of served requests
 * starts at 0 and what the test opened is closed.
 */
export function eachTestStartsClean(): void {
  beforeEach(() => {
    served = 0;
  });
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
  });
}
