// The candidate peer links of bench/transports.ts, each as a server and a client that exchange
// one push and its ack: today's HTTP/1.1 exchange (plain, and signed as src/replication does),
// an HTTP/2 stream, a WebSocket message, and a length-prefixed frame on a TCP socket (plain,
// and with an HMAC per frame as the streaming link will have).
import http from "node:http";
import http2 from "node:http2";
import net, { type AddressInfo } from "node:net";
import { WebSocket, WebSocketServer } from "ws";
import type { Entry, NodeName, OriginId, PostId, UserId } from "../../src/crdt/index.js";
import { binaryCodec } from "../../src/replication/codec.js";
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, signatureOf, verify } from "./signing.js";
import { FrameReader, FrameSealer, MAX_FRAME } from "./frames.js";

export const LINKS = ["http1", "http1-signed", "http2", "ws", "net", "net-hmac"] as const;
export type LinkName = (typeof LINKS)[number];

export const LINK_LABELS: Readonly<Record<LinkName, string>> = {
  http1: "HTTP/1.1 keep-alive",
  "http1-signed": "HTTP/1.1 keep-alive, signed as today",
  http2: "HTTP/2 stream on one session",
  ws: "ws message",
  net: "TCP, length-prefixed frame",
  "net-hmac": "TCP, frame + HMAC-SHA256",
};

/** The two messages: a push of one like and its ack, in the peer codec, as on the wire today. */
export interface Payloads {
  readonly push: Buffer;
  readonly ack: Buffer;
}

export function payloads(): Payloads {
  const origin = "node1~2mz4k1q8x0c7v3bd" as OriginId;
  const entry: Entry = {
    origin,
    seq: 120_001,
    post: "load-123" as PostId,
    user: "b-0-123456" as UserId,
    ts: 1_764_000_000_000,
  };
  const push = binaryCodec.encode({
    kind: "deltas",
    node: "node1" as NodeName,
    origin,
    entries: [entry],
  });
  const ack = binaryCodec.encode({
    kind: "deltas-reply",
    node: "node2" as NodeName,
    origin: "node2~9d0s8f7g6h5j4k3l" as OriginId,
    vv: new Map([[origin, 120_001]]),
  });
  return { push, ack };
}

/** The server end: a port, and the bytes its connections have carried both ways so far. */
export interface LinkServer {
  readonly port: number;
  bytes(): number;
}

/** The client end: one message and its answer, each awaited before the next. */
export interface LinkClient {
  exchange(): Promise<void>;
  close(): void;
}

export interface LinkOptions {
  readonly payloads: Payloads;
  /** The cluster secret (signed HTTP) or the per-connection MAC key (frames). */
  readonly key: Buffer;
}

const HOST = "127.0.0.1";

/** Counts what every accepted connection of `server` carried, both ways. */
function listen(server: net.Server): Promise<LinkServer> {
  const sockets = new Set<net.Socket>();
  server.on("connection", (socket: net.Socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
  });
  return new Promise((resolve) =>
    server.listen(0, HOST, () =>
      resolve({
        port: (server.address() as AddressInfo).port,
        bytes: () => [...sockets].reduce((sum, s) => sum + s.bytesRead + s.bytesWritten, 0),
      }),
    ),
  );
}

function expectLength(what: string, got: number, want: number): void {
  if (got !== want) throw new Error(`${what}: ${got} bytes, expected ${want}`);
}

/** One pending answer at a time: the bench sends the next message only after the last answer. */
class Pending {
  private settle: ((error?: Error) => void) | undefined;

  wait(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.settle = (error) => (error ? reject(error) : resolve());
    });
  }

  done(error?: Error): void {
    const settle = this.settle;
    this.settle = undefined;
    settle?.(error);
  }
}

function readBody(stream: NodeJS.ReadableStream, done: (body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  stream.on("data", (chunk: Buffer) => chunks.push(chunk));
  stream.on("end", () => done(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
}

// --- HTTP/1.1 -------------------------------------------------------------------------------

// Protocol v2's push path, as the HTTP peer port served it.
const PATH = "/peer/v2/deltas";

function serveHttp1({ payloads, key }: LinkOptions, signed: boolean): Promise<LinkServer> {
  const secret = key.toString("hex");
  const server = http.createServer((req, res) => {
    readBody(req, (body) => {
      expectLength("push", body.length, payloads.push.length);
      const headers: http.OutgoingHttpHeaders = {
        "content-type": binaryCodec.contentType,
        "content-length": payloads.ack.length,
      };
      if (signed) {
        const verdict = verify(secret, "POST", PATH, signatureOf(req.headers), body, Date.now());
        if (!verdict.ok) throw new Error(`push rejected: ${verdict.reason}`);
        const timestamp = String(Date.now());
        headers[TIMESTAMP_HEADER] = timestamp;
        headers[SIGNATURE_HEADER] = sign(secret, "REPLY", PATH, timestamp, payloads.ack);
      }
      res.writeHead(200, headers);
      res.end(payloads.ack);
    });
  });
  return listen(server);
}

function connectHttp1(port: number, { payloads, key }: LinkOptions, signed: boolean): LinkClient {
  const secret = key.toString("hex");
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  return {
    exchange: () =>
      new Promise((resolve, reject) => {
        const headers: http.OutgoingHttpHeaders = {
          "content-type": binaryCodec.contentType,
          "content-length": payloads.push.length,
        };
        if (signed) {
          const timestamp = String(Date.now());
          headers[TIMESTAMP_HEADER] = timestamp;
          headers[SIGNATURE_HEADER] = sign(secret, "POST", PATH, timestamp, payloads.push);
        }
        const req = http.request(
          { host: HOST, port, method: "POST", path: PATH, agent, headers },
          (res) =>
            readBody(res, (body) => {
              expectLength("ack", body.length, payloads.ack.length);
              if (signed) {
                const verdict = verify(
                  secret,
                  "REPLY",
                  PATH,
                  signatureOf(res.headers),
                  body,
                  Date.now(),
                );
                if (!verdict.ok) return reject(new Error(`ack rejected: ${verdict.reason}`));
              }
              resolve();
            }),
        );
        req.on("socket", (socket) => socket.setNoDelay(true));
        req.on("error", reject);
        req.end(payloads.push);
      }),
    close: () => agent.destroy(),
  };
}

// --- HTTP/2 ---------------------------------------------------------------------------------

function serveHttp2({ payloads }: LinkOptions): Promise<LinkServer> {
  const server = http2.createServer();
  server.on("stream", (stream) =>
    readBody(stream, (body) => {
      expectLength("push", body.length, payloads.push.length);
      stream.respond({ ":status": 200, "content-type": binaryCodec.contentType });
      stream.end(payloads.ack);
    }),
  );
  return listen(server);
}

async function connectHttp2(port: number, { payloads }: LinkOptions): Promise<LinkClient> {
  const session = http2.connect(`http://${HOST}:${port}`, {
    createConnection: () => net.connect({ host: HOST, port, noDelay: true }),
  });
  await new Promise<void>((resolve, reject) => {
    session.once("connect", () => resolve());
    session.once("error", reject);
  });
  return {
    exchange: () =>
      new Promise((resolve, reject) => {
        const stream = session.request({
          ":method": "POST",
          ":path": PATH,
          "content-type": binaryCodec.contentType,
        });
        stream.on("error", reject);
        readBody(stream, (body) => {
          expectLength("ack", body.length, payloads.ack.length);
          resolve();
        });
        stream.end(payloads.push);
      }),
    close: () => session.destroy(),
  };
}

// --- WebSocket (ws) -------------------------------------------------------------------------

function serveWs({ payloads }: LinkOptions): Promise<LinkServer> {
  const server = http.createServer();
  const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: MAX_FRAME });
  wss.on("connection", (socket) =>
    socket.on("message", (data) => {
      expectLength("push", Buffer.isBuffer(data) ? data.length : -1, payloads.push.length);
      socket.send(payloads.ack);
    }),
  );
  return listen(server);
}

async function connectWs(port: number, { payloads }: LinkOptions): Promise<LinkClient> {
  const socket = new WebSocket(`ws://${HOST}:${port}/`, {
    perMessageDeflate: false,
    maxPayload: MAX_FRAME,
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  const pending = new Pending();
  socket.on("message", (data) => {
    const length = Buffer.isBuffer(data) ? data.length : -1;
    pending.done(length === payloads.ack.length ? undefined : new Error(`ack: ${length} bytes`));
  });
  return {
    exchange: () => {
      const answered = pending.wait();
      socket.send(payloads.push);
      return answered;
    },
    close: () => socket.terminate(),
  };
}

// --- length-prefixed frames on TCP, optionally with a MAC per frame ---------------------------

const TO_SERVER = 1;
const TO_CLIENT = 2;

function serveNet({ payloads, key }: LinkOptions, mac: boolean): Promise<LinkServer> {
  const server = net.createServer((socket) => {
    const incoming = new FrameSealer(mac ? key : undefined, TO_SERVER);
    const outgoing = new FrameSealer(mac ? key : undefined, TO_CLIENT);
    const reader = new FrameReader((body) => {
      expectLength("push", incoming.open(body).length, payloads.push.length);
      socket.write(outgoing.seal(payloads.ack));
    });
    socket.on("data", (chunk: Buffer) => reader.push(chunk));
  });
  return listen(server);
}

async function connectNet(port: number, { payloads, key }: LinkOptions, mac: boolean) {
  const socket = net.connect({ host: HOST, port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  const outgoing = new FrameSealer(mac ? key : undefined, TO_SERVER);
  const incoming = new FrameSealer(mac ? key : undefined, TO_CLIENT);
  const pending = new Pending();
  const reader = new FrameReader((body) => {
    try {
      expectLength("ack", incoming.open(body).length, payloads.ack.length);
      pending.done();
    } catch (error) {
      pending.done(error as Error);
    }
  });
  socket.on("data", (chunk: Buffer) => reader.push(chunk));
  return {
    exchange: () => {
      const answered = pending.wait();
      socket.write(outgoing.seal(payloads.push));
      return answered;
    },
    close: () => socket.destroy(),
  } satisfies LinkClient;
}

export function serveLink(name: LinkName, options: LinkOptions): Promise<LinkServer> {
  switch (name) {
    case "http1":
      return serveHttp1(options, false);
    case "http1-signed":
      return serveHttp1(options, true);
    case "http2":
      return serveHttp2(options);
    case "ws":
      return serveWs(options);
    case "net":
      return serveNet(options, false);
    case "net-hmac":
      return serveNet(options, true);
  }
}

export async function connectLink(
  name: LinkName,
  port: number,
  options: LinkOptions,
): Promise<LinkClient> {
  switch (name) {
    case "http1":
      return connectHttp1(port, options, false);
    case "http1-signed":
      return connectHttp1(port, options, true);
    case "http2":
      return connectHttp2(port, options);
    case "ws":
      return connectWs(port, options);
    case "net":
      return connectNet(port, options, false);
    case "net-hmac":
      return connectNet(port, options, true);
  }
}
