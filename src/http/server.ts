// The HTTP servers of a node (public and admin ports): time limits for slow clients, an
// answer to CONNECT and to what node:http cannot parse, and a close that answers every request
// it has read.
import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import {
  ExpectationFailedError,
  HeadersTooLargeError,
  MalformedRequestError,
  MethodNotAllowedError,
  RequestTimeoutError,
  ShuttingDownError,
  type HttpError,
} from "./errors.js";
import { awaitContinue } from "./body.js";
import { LeanConnection, type LeanOptions } from "./lean-connection.js";
import type { PlainHandler } from "./plain-reply.js";
import { rawErrorResponse, sendError } from "./respond.js";
import { silentLogger } from "../telemetry/types.js";

// Slow or stalled clients must not pin a connection forever.
const TIME_LIMITS: LeanOptions = {
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
};
// While closing, connections that have become idle are closed this often.
const IDLE_SWEEP_MS = 50;

export class HttpServer {
  private readonly server: Server;
  private closing = false;
  /**
   * The latest unanswered response of each connection: the one whose answer carries
   * `Connection: close` once the server closes (an earlier one would drop those queued after it).
   */
  private readonly unanswered = new Map<Socket, ServerResponse>();
  /** A 'close' listener shared by every response, so that tracking costs no closure a request. */
  private readonly answered: (this: ServerResponse) => void;
  /** Serves plain requests without node:http (lean-connection.ts), once the node serves. */
  private plain: PlainHandler | undefined;
  private readonly lean = new Set<LeanConnection>();
  /** Connections answered for what node:http refused: nothing more is read or answered. */
  private readonly refused = new WeakSet<Duplex>();
  /** Connections handed over by the lean path mid-request: what serve() does with its head. */
  private readonly handedDeadlines = new WeakMap<Socket, (req: IncomingMessage) => void>();

  constructor(
    listener: RequestListener,
    /** The methods the port serves, for the Allow header of a refused CONNECT. */
    private readonly methods: readonly string[] = ["GET", "HEAD", "POST"],
    /** The same on both paths (node:http's and the lean connection's); shorter in tests. */
    limits: LeanOptions = TIME_LIMITS,
  ) {
    const unanswered = this.unanswered;
    this.answered = function (this: ServerResponse) {
      if (unanswered.get(this.req.socket) === this) unanswered.delete(this.req.socket);
    };
    // Without a Host header node:http answers 400 with an empty body: serve() answers it instead.
    // The time limits below are checked every connectionsCheckingInterval (30 s by default, so a
    // 30 s limit could take a minute): each second instead, as the lean path keeps them.
    this.server = createServer(
      { requireHostHeader: false, connectionsCheckingInterval: 1000 },
      (req, res) => this.serve(req, res, listener),
    );
    this.server.requestTimeout = limits.requestTimeoutMs;
    this.server.headersTimeout = limits.headersTimeoutMs;
    this.server.keepAliveTimeout = limits.keepAliveTimeoutMs;
    // Every connection is first offered to the lean path; node:http's own listener takes those
    // it leaves (and all of them while no plain handler is set).
    const [nodeHttp] = this.server.listeners("connection") as ((socket: Socket) => void)[];
    if (nodeHttp === undefined) throw new Error("node:http has no connection listener");
    this.server.off("connection", nodeHttp);
    const handOff = (socket: Socket) => nodeHttp.call(this.server, socket);
    this.server.on("connection", (socket: Socket) => {
      // A response queued behind a pipelined one emits no 'close' when its socket dies.
      socket.once("close", () => this.unanswered.delete(socket));
      const plain = this.plain;
      if (plain === undefined || this.closing) {
        handOff(socket);
        return;
      }
      // Once node:http has it, its close and cut are node:http's.
      const connection = new LeanConnection(
        socket,
        plain,
        (handed, since) => {
          this.lean.delete(connection);
          handOff(handed);
          if (since !== undefined) this.keepDeadlines(handed, since, limits);
        },
        limits,
      );
      this.lean.add(connection);
      socket.once("close", () => this.lean.delete(connection));
    });
    // node:http answers what it cannot parse and a request past its time limits with a bare
    // status line, or nothing once the connection has carried an answer; these are JSON too.
    this.server.on("clientError", (error: Error & { code?: string }, socket: Duplex) => {
      // One answer a connection: node:http repeats a parse error at every chunk after it.
      if (this.refused.has(socket)) return;
      this.refused.add(socket);
      if (error.code === "ECONNRESET" || !socket.writable) {
        socket.destroy();
        return;
      }
      // Nothing more is read (the rest of a timed-out request, a request after it): the
      // connection ends with this answer, then closes whatever the client does.
      socket.pause();
      const refusal = clientErrorOf(error);
      const before = this.unanswered.get(socket as Socket);
      // The request being answered is the one whose body did not all come: it gets the answer
      // (node:http writes it after those before it, then closes).
      if (before !== undefined && !before.req.complete) {
        if (before.headersSent) socket.destroy();
        else sendError(before, refusal, silentLogger);
        return;
      }
      this.afterAnswers(socket, () =>
        socket.end(rawErrorResponse(refusal), () => socket.destroy()),
      );
    });
    // Without this listener node:http answers 100 Continue to every head that asks, so a client
    // uploaded a body of megabytes to be told 413. The 100 is sent when a reader takes the body
    // (body.ts); node:http closes the connection after an answer given without it.
    this.server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
      awaitContinue(req, res);
      this.serve(req, res, listener);
    });
    // Served as any request (in its turn, refused while closing), with the 417 as its answer.
    const expectationFailed: RequestListener = (req, res) =>
      sendError(res, new ExpectationFailedError(req.headers.expect ?? ""), silentLogger);
    this.server.on("checkExpectation", (req: IncomingMessage, res: ServerResponse) =>
      this.serve(req, res, expectationFailed),
    );
    // Without a listener node:http drops a CONNECT's connection without a word. After the answer
    // to a request before it, if one is being written.
    this.server.on("connect", (_req: IncomingMessage, socket: Duplex) => {
      socket.on("error", () => socket.destroy());
      this.afterAnswers(socket, () =>
        socket.end(rawErrorResponse(new MethodNotAllowedError("CONNECT", this.methods))),
      );
    });
  }

  /**
   * node:http counts a whole request's time (requestTimeout) from the first byte it reads: for
   * a request begun on the lean path, from the handoff, up to a head's time later than its first
   * byte. Its body keeps the deadline counted `since` that byte; past it, the answer is
   * node:http's own (the clientError above). A head's own limit node:http counts from earlier
   * (the connection, or the last answer), never later: it needs nothing here.
   */
  private keepDeadlines(socket: Socket, since: number, limits: LeanOptions): void {
    // serve() calls this with the request once node:http has read its head.
    this.handedDeadlines.set(socket, (req) => {
      if (req.complete) return;
      const left = Math.max(1, since + limits.requestTimeoutMs - performance.now());
      // A body all here but not read yet by then is no timeout.
      const whole = setTimeout(() => {
        if (req.complete) return;
        const error = Object.assign(new Error("the request did not all come in time"), {
          code: "ERR_HTTP_REQUEST_TIMEOUT",
        });
        this.server.emit("clientError", error, socket);
      }, left);
      req.once("end", () => clearTimeout(whole));
      socket.once("close", () => clearTimeout(whole));
    });
  }

  /** Writes the connection's last answer now, or after the one being written on it. */
  private afterAnswers(socket: Duplex, last: () => void): void {
    const before = this.unanswered.get(socket as Socket);
    if (before === undefined) last();
    else before.once("close", () => (socket.writable ? last() : socket.destroy()));
  }

  /** Serves plain requests of new connections with `handler`, without node:http. */
  servePlain(handler: PlainHandler | undefined): void {
    this.plain = handler;
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  /**
   * Stops accepting; answers every request already read (with `Connection: close`) and refuses
   * those that arrive on open connections with 503 `shutting_down`; closes idle connections.
   * Resolves once every connection has ended; those still busy at `deadlineMs` are cut.
   */
  close(deadlineMs: number): Promise<void> {
    if (!this.server.listening) return Promise.resolve();
    this.closing = true;
    for (const res of this.unanswered.values())
      if (!res.headersSent) res.setHeader("connection", "close");
    for (const connection of this.lean) connection.close();
    return new Promise((resolve) => {
      const idle = setInterval(() => this.server.closeIdleConnections(), IDLE_SWEEP_MS);
      const cut = setTimeout(() => {
        this.server.closeAllConnections();
        for (const connection of this.lean) connection.destroy();
      }, deadlineMs);
      this.server.close(() => {
        clearInterval(idle);
        clearTimeout(cut);
        resolve();
      });
      this.server.closeIdleConnections();
    });
  }

  private serve(req: IncomingMessage, res: ServerResponse, listener: RequestListener): void {
    const socket = req.socket;
    const handed = this.handedDeadlines.get(socket);
    if (handed !== undefined) {
      this.handedDeadlines.delete(socket);
      handed(req);
    }
    const before = this.unanswered.get(socket);
    this.unanswered.set(socket, res);
    res.once("close", this.answered);
    // Pipelined requests are handed over as node:http parses them, their answers written in
    // order; unlike the lean path, a read behind a like may run before the like commits.
    // Holding it back would need node:http's parser paused: it reads the socket's handle
    // itself, so socket.pause() does not stop it, and 100,000 reads pipelined behind a stalled
    // write then held 220 MB; node:http's own backpressure (on the answers written) bounds it.
    if (!this.closing) {
      handle(req, res, listener);
      return;
    }
    // A pipelined request behind one still unanswered: that one must not close the connection
    // before this answer is written.
    if (before !== undefined && !before.headersSent) before.removeHeader("connection");
    sendError(res, new ShuttingDownError(), silentLogger);
  }
}

/** A request, refused if its framing is not one this server reads without guessing. */
function handle(req: IncomingMessage, res: ServerResponse, listener: RequestListener): void {
  const malformed = malformedHead(req);
  if (malformed === undefined) listener(req, res);
  else sendError(res, new MalformedRequestError(malformed), silentLogger);
}

/**
 * Why node:http's reading of a head is not taken, if it is not: a version other than HTTP/1.1
 * and 1.0, HTTP/1.1 without a Host, a Host or Content-Type twice (node:http keeps the first),
 * or a Transfer-Encoding other than chunked (node:http decodes the chunks and drops the rest).
 */
function malformedHead(req: IncomingMessage): string | undefined {
  if (req.httpVersion !== "1.1" && req.httpVersion !== "1.0") return `HTTP/${req.httpVersion}`;
  if (req.headers.host === undefined && req.httpVersion === "1.1") return "no Host header";
  for (const name of ["host", "content-type"])
    if ((req.headersDistinct[name]?.length ?? 0) > 1) return `two ${name} headers`;
  const coding = req.headers["transfer-encoding"];
  if (coding !== undefined && coding.trim().toLowerCase() !== "chunked")
    return `Transfer-Encoding other than chunked: ${coding}`;
  return undefined;
}

/** The answer to what node:http's parser refused (`HPE_*`, with its reason) or timed out. */
function clientErrorOf(error: Error & { code?: string; reason?: string }): HttpError {
  switch (error.code) {
    case "HPE_HEADER_OVERFLOW":
      return new HeadersTooLargeError();
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return new RequestTimeoutError();
    default:
      return new MalformedRequestError(error.reason ?? error.code ?? error.message);
  }
}
