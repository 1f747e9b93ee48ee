// A public-port connection served without node:http while its requests are plain (see
// plain-request.ts): requests are read from the socket's bytes, answered in order, several
// answers in one write when they are ready together. The first request that is not plain, and
// everything after it, goes to node:http with the bytes already read.
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import { errorAnswer, ShuttingDownError } from "./errors.js";
import { parsePlainRequest, type PlainRequest } from "./plain-request.js";

export interface PlainReply {
  readonly status: number;
  /** Headers of the answer besides its type, length and connection (an error's Allow, say). */
  readonly headers?: Readonly<Record<string, string>>;
  /** The JSON text of the answer. */
  readonly body: string;
}

/** Answers a plain request; it never throws or rejects (errors are answers too). */
export type PlainHandler = (
  request: PlainRequest,
  socket: Socket,
) => PlainReply | Promise<PlainReply>;

export interface LeanOptions {
  /** An idle connection is closed after this long, as node:http's `keepAliveTimeout`. */
  readonly keepAliveTimeoutMs: number;
  /** A request whose bytes have not all come by then is answered 408, as `headersTimeout`. */
  readonly headersTimeoutMs: number;
}

/** Bytes read ahead while a request is served, beyond which the socket is paused. */
const READ_AHEAD_BYTES = 64 * 1024;
const TIMED_OUT = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n";

export class LeanConnection {
  private buffered: Buffer | undefined;
  /** Since when the buffered bytes have been an incomplete request. */
  private partialSince = 0;
  /** A request is being served: the next waits (answers keep their order). */
  private busy = false;
  /** The server is closing: answer what was read, refuse the rest, then close. */
  private closing = false;
  private readonly keepAlive: string;
  private readonly onData = (chunk: Buffer) => this.read(chunk);
  private readonly onEnd = () => this.clientEnded();
  private readonly onTimeout = () => this.timedOut();
  private readonly onDrain = () => this.serveBuffered();
  private readonly onError = () => this.socket.destroy();

  constructor(
    private readonly socket: Socket,
    private readonly handler: PlainHandler,
    /** Gives the socket, with its unread bytes put back, to node:http. */
    private readonly handOff: (socket: Socket) => void,
    private readonly options: LeanOptions,
  ) {
    this.keepAlive = `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(options.keepAliveTimeoutMs / 1000)}\r\n\r\n`;
    socket.setTimeout(options.keepAliveTimeoutMs);
    socket.on("data", this.onData);
    socket.on("end", this.onEnd);
    socket.on("timeout", this.onTimeout);
    socket.on("drain", this.onDrain);
    socket.on("error", this.onError);
  }

  /** The server closes: an idle connection now, a busy one after its answer (`Connection: close`). */
  close(): void {
    this.closing = true;
    if (!this.busy && this.buffered === undefined) this.socket.destroy();
  }

  /** Cuts the connection, answered or not (the server's close deadline has passed). */
  destroy(): void {
    this.socket.destroy();
  }

  private read(chunk: Buffer): void {
    if (this.buffered === undefined) {
      this.buffered = chunk;
      this.partialSince = 0;
    } else this.buffered = Buffer.concat([this.buffered, chunk]);
    if (this.busy) {
      if (this.buffered.length > READ_AHEAD_BYTES) this.socket.pause();
      return;
    }
    this.serveBuffered();
  }

  /** Serves the buffered requests in order until one is incomplete, not plain, or pending. */
  private serveBuffered(): void {
    let out = "";
    while (this.buffered !== undefined && !this.busy && !this.socket.destroyed) {
      // The client does not read its answers: read no more of its requests until it does.
      if (this.socket.writableNeedDrain) {
        if (out !== "") this.socket.write(out);
        return;
      }
      const parsed = parsePlainRequest(this.buffered);
      if (parsed.kind === "other") {
        if (out !== "") this.socket.write(out);
        this.giveToNodeHttp();
        return;
      }
      if (parsed.kind === "incomplete") {
        if (this.partialSince === 0) this.partialSince = performance.now();
        else if (performance.now() - this.partialSince >= this.options.headersTimeoutMs) {
          this.socket.end(out + TIMED_OUT);
          return;
        }
        break;
      }
      const rest = this.buffered.subarray(parsed.size);
      this.buffered = rest.length === 0 ? undefined : rest;
      this.partialSince = 0;
      const { request } = parsed;
      if (this.closing) {
        this.socket.end(out + this.render(shuttingDown(), true));
        return;
      }
      let reply: PlainReply | Promise<PlainReply>;
      try {
        reply = this.handler(request, this.socket);
      } catch {
        // The handler answers every error itself: this is a bug, and the connection is cut.
        this.socket.destroy();
        return;
      }
      if (reply instanceof Promise) {
        if (out !== "") this.socket.write(out);
        out = "";
        this.busy = true;
        reply.then(
          (answer) => this.answered(answer, request.close),
          () => this.socket.destroy(),
        );
        return;
      }
      const close = request.close || this.closing;
      out += this.render(reply, close);
      if (close) {
        this.socket.end(out);
        return;
      }
    }
    if (out !== "") this.socket.write(out);
    if (this.busy || this.socket.destroyed) return;
    // Nothing more will come, or nothing more is wanted: what was left is an unfinished request.
    if (this.socket.readableEnded) this.socket.end();
    else if (this.closing && this.buffered === undefined) this.socket.destroy();
  }

  private answered(reply: PlainReply, close: boolean): void {
    this.busy = false;
    if (this.socket.destroyed) return;
    // While closing, a request read behind this one is still answered (refused, 503).
    if (close || (this.closing && this.buffered === undefined)) {
      this.socket.end(this.render(reply, true));
      return;
    }
    this.socket.write(this.render(reply, false));
    if (this.socket.isPaused()) this.socket.resume();
    this.serveBuffered();
  }

  private render(reply: PlainReply, close: boolean): string {
    let head = `HTTP/1.1 ${reply.status} ${STATUS_CODES[reply.status] ?? ""}\r\n`;
    if (reply.headers)
      for (const name in reply.headers) head += `${name}: ${reply.headers[name]}\r\n`;
    head += `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(reply.body)}\r\nDate: ${httpDate()}\r\n`;
    return head + (close ? "Connection: close\r\n\r\n" : this.keepAlive) + reply.body;
  }

  /** The client sent its last byte: answer what it asked, then end; an unfinished request is dropped. */
  private clientEnded(): void {
    this.serveBuffered();
  }

  private timedOut(): void {
    if (this.busy) return;
    if (this.buffered === undefined) {
      this.socket.destroy();
      return;
    }
    if (this.partialSince === 0) return;
    if (performance.now() - this.partialSince >= this.options.headersTimeoutMs)
      this.socket.end(TIMED_OUT);
    // A timeout fires once; the next one is for the request's own deadline.
    else this.socket.setTimeout(this.options.keepAliveTimeoutMs);
  }

  private giveToNodeHttp(): void {
    const socket = this.socket;
    // A client that already ended its side, with such a request behind a pending like: node:http
    // cannot take a stream that has ended, and would abort its requests on that end anyway.
    if (socket.readableEnded) {
      socket.end();
      return;
    }
    socket.off("data", this.onData);
    socket.off("end", this.onEnd);
    socket.off("timeout", this.onTimeout);
    socket.off("drain", this.onDrain);
    socket.off("error", this.onError);
    socket.setTimeout(0);
    const paused = socket.isPaused();
    if (this.buffered !== undefined) socket.unshift(this.buffered);
    this.buffered = undefined;
    this.handOff(socket);
    if (paused) socket.resume();
  }
}

function shuttingDown(): PlainReply {
  const answer = errorAnswer(new ShuttingDownError());
  return { status: answer.status, headers: answer.headers, body: JSON.stringify(answer.body) };
}

let dateSecond = -1;
let dateText = "";
/** The Date header, made once a second as node:http makes it. */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}
