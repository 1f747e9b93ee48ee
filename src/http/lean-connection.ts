// A public-port connection served without node:http while its requests are plain (see
// plain-request.ts): requests are read from the socket's bytes, answered in order, several
// answers in one write when they are ready together. The first request that is not plain, and
// everything after it, goes to node:http with the bytes already read.
import type { Socket } from "node:net";
import {
  MalformedRequestError,
  RequestTimeoutError,
  ShuttingDownError,
  errorAnswer,
} from "./errors.js";
import { replyOf, type PlainHandler, type PlainReply } from "./plain-reply.js";
import { HEAD_END, blankLines, parsePlainRequest } from "./plain-request.js";
import { httpDate, rawErrorResponse, rawJsonResponse } from "./respond.js";

export interface LeanOptions {
  /** An idle connection is closed after this long, as node:http's `keepAliveTimeout`. */
  readonly keepAliveTimeoutMs: number;
  /** A request whose head has not all come by then is answered 408, as `headersTimeout`. */
  readonly headersTimeoutMs: number;
  /** A request whose body has not all come by then is answered 408, as `requestTimeout`. */
  readonly requestTimeoutMs: number;
}

/** Bytes read ahead while a request is served, or while answers wait for the client to read. */
const READ_AHEAD_BYTES = 64 * 1024;
/** The answer to a request not all here in time, as node:http's is (server.ts). */
const timedOut = () => rawErrorResponse(new RequestTimeoutError());
/** node:http's reason for a request the client's end cut short. */
const UNFINISHED = new MalformedRequestError("Invalid EOF state");

export class LeanConnection {
  private buffered: Buffer | undefined;
  /** Since when the buffered bytes have been an incomplete request (0: they are not). */
  private partialSince = 0;
  /**
   * The incomplete request's whole size once its head is read (0 before): nothing is parsed
   * again until that much is here, and its deadline is the request timeout.
   */
  private awaited = 0;
  /** How far the incomplete head has been looked through for its end. */
  private searched = 0;
  /** A request is being served: the next waits (answers keep their order). */
  private busy = false;
  /** The server is closing: answer what was read, refuse the rest, then close. */
  private closing = false;
  /** The last answer is written, or node:http has the connection: nothing more is read here. */
  private done = false;
  private readonly keepAlive: string;
  private readonly onData = (chunk: Buffer) => this.read(chunk);
  private readonly onEnd = () => this.serveBuffered();
  private readonly onTimeout = () => this.timedOut();
  private readonly onDrain = () => {
    this.serveBuffered();
    this.flow();
  };
  private readonly onError = () => this.socket.destroy();

  constructor(
    private readonly socket: Socket,
    private readonly handler: PlainHandler,
    /**
     * Gives the socket, with its unread bytes put back, to node:http; with the time (of
     * performance.now()) since which the request in those bytes has been coming, if it had.
     */
    private readonly handOff: (socket: Socket, since: number | undefined) => void,
    private readonly options: LeanOptions,
  ) {
    this.keepAlive = `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(options.keepAliveTimeoutMs / 1000)}\r\n`;
    socket.setTimeout(options.keepAliveTimeoutMs);
    socket.on("data", this.onData);
    socket.on("end", this.onEnd);
    socket.on("timeout", this.onTimeout);
    socket.on("drain", this.onDrain);
    socket.on("error", this.onError);
  }

  /** Bytes read and not yet answered (or handed to node:http). */
  get bufferedBytes(): number {
    return this.buffered?.length ?? 0;
  }

  /** The server closes: an idle connection now, a busy one after its answer (`Connection: close`). */
  close(): void {
    this.closing = true;
    if (!this.done && !this.busy && this.buffered === undefined) this.socket.destroy();
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
    if (!this.busy) this.serveBuffered();
    this.flow();
  }

  /**
   * Reads on while there is room: paused when the client leaves its answers unread (as node:http
   * does), or when more than READ_AHEAD_BYTES wait behind a request being served.
   */
  private flow(): void {
    if (this.done) return;
    if (
      this.socket.writableNeedDrain ||
      (this.buffered !== undefined && this.buffered.length > READ_AHEAD_BYTES)
    ) {
      this.socket.pause();
      // An unfinished request's deadline starts again once this side reads again.
      this.partialSince = 0;
    } else if (this.socket.isPaused()) this.socket.resume();
  }

  /** Serves the buffered requests in order until one is incomplete, not plain, or pending. */
  private serveBuffered(): void {
    let out = "";
    while (this.buffered !== undefined && !this.busy && !this.done) {
      // The client does not read its answers: read none of its requests until it does.
      if (this.socket.writableNeedDrain) {
        this.flush(out);
        return;
      }
      const blank = blankLines(this.buffered);
      if (blank > 0) {
        this.consume(blank);
        continue;
      }
      const parsed =
        this.awaited > this.buffered.length
          ? undefined
          : parsePlainRequest(this.buffered, this.searched);
      if (parsed?.kind === "other") {
        this.flush(out);
        this.giveToNodeHttp();
        return;
      }
      if (parsed === undefined || parsed.kind === "incomplete") {
        const now = performance.now();
        if (this.partialSince === 0) this.partialSince = now;
        if (parsed !== undefined) {
          this.awaited = parsed.size;
          // The end of a head may straddle what is here and what comes next.
          this.searched = parsed.size === 0 ? Math.max(0, this.buffered.length - 3) : 0;
        }
        if (now - this.partialSince >= this.deadline()) {
          this.finish(out + timedOut());
          return;
        }
        this.armDeadline(now);
        break;
      }
      this.consume(parsed.size);
      const { request } = parsed;
      if (this.closing) {
        this.finish(out + this.render(replyOf(errorAnswer(new ShuttingDownError())), true));
        return;
      }
      let reply: PlainReply | Promise<PlainReply>;
      try {
        reply = this.handler(request, this.socket);
      } catch {
        // The handler answers every error itself: this is a bug, and the connection is cut.
        this.flush(out);
        this.socket.destroy();
        return;
      }
      if (reply instanceof Promise) {
        this.flush(out);
        out = "";
        this.busy = true;
        reply.then(
          (answer) => this.answered(answer, request.close),
          () => this.socket.destroy(),
        );
        return;
      }
      if (request.close) {
        this.finish(out + this.render(reply, true));
        return;
      }
      out += this.render(reply, false);
    }
    this.flush(out);
    if (this.busy || this.done) return;
    // The client sent its last byte: what is left is an unfinished request, refused as
    // node:http refuses it.
    if (this.socket.readableEnded)
      this.finish(this.buffered === undefined ? "" : rawErrorResponse(UNFINISHED));
    else if (this.closing && this.buffered === undefined) this.finish("");
  }

  private answered(reply: PlainReply, close: boolean): void {
    this.busy = false;
    if (this.done || this.socket.destroyed) return;
    // While closing, a whole request read behind this one is still answered (refused, 503);
    // the start of one is dropped with the connection, as node:http does.
    if (close || (this.closing && !this.holdsRequest())) {
      this.finish(this.render(reply, true));
      return;
    }
    // Written once this turn's work is done, with what serveBuffered adds: what the like's
    // commit set going in the same turn (its push to peers on an idle link) leaves first.
    this.socket.cork();
    this.socket.write(this.render(reply, false));
    this.serveBuffered();
    this.flow();
    process.nextTick(uncork, this.socket);
  }

  private consume(size: number): void {
    const buffered = this.buffered;
    this.buffered =
      buffered === undefined || size >= buffered.length ? undefined : buffered.subarray(size);
    this.partialSince = 0;
    this.awaited = 0;
    this.searched = 0;
    // The socket's timer set to an unfinished request's deadline (armDeadline) goes back.
    if (this.socket.timeout !== this.options.keepAliveTimeoutMs)
      this.socket.setTimeout(this.options.keepAliveTimeoutMs);
  }

  /** Whether a whole request (after any empty lines) is buffered. */
  private holdsRequest(): boolean {
    const blank = this.buffered === undefined ? 0 : blankLines(this.buffered);
    if (blank > 0) this.consume(blank);
    if (this.buffered === undefined) return false;
    const { kind } = parsePlainRequest(this.buffered);
    // "other" is also the start of a request that cannot become plain: whole with its head only.
    return kind === "plain" || (kind === "other" && this.buffered.includes(HEAD_END));
  }

  private flush(out: string): void {
    if (out !== "") this.socket.write(out);
  }

  /** Writes the last answer and ends the connection; nothing it sends after is read. */
  private finish(last: string): void {
    this.done = true;
    this.buffered = undefined;
    this.socket.off("data", this.onData);
    this.socket.once("finish", () => this.socket.destroy());
    this.socket.end(last);
  }

  private deadline(): number {
    return this.awaited > 0 ? this.options.requestTimeoutMs : this.options.headersTimeoutMs;
  }

  private render(reply: PlainReply, close: boolean): string {
    const connection = close ? "Connection: close\r\n" : this.keepAlive;
    return rawJsonResponse(
      reply.status,
      reply.headers,
      reply.body,
      `Date: ${httpDate()}\r\n${connection}`,
    );
  }

  private timedOut(): void {
    // The client has not taken the last answer in time: give up on it.
    if (this.done) {
      this.socket.destroy();
      return;
    }
    // The answer's write will start the timer again.
    if (this.busy) return;
    // Idle: nothing read is unanswered, nothing answered is still queued for the client.
    if (this.buffered === undefined && this.socket.writableLength === 0) {
      this.socket.destroy();
      return;
    }
    const now = performance.now();
    if (this.partialSince !== 0 && now - this.partialSince >= this.deadline()) {
      this.finish(timedOut());
      return;
    }
    // A timeout fires once: the next one is for the request's deadline, or for answers the
    // client has not read yet (node:http waits for those too).
    this.socket.setTimeout(this.options.keepAliveTimeoutMs);
    this.armDeadline(now);
  }

  /**
   * An unfinished request is answered 408 at its deadline, not at the first idle timeout past
   * it: the socket's timer (reset by every read) fires by then.
   */
  private armDeadline(now: number): void {
    if (this.partialSince === 0) return;
    const left = Math.ceil(this.partialSince + this.deadline() - now);
    if (left >= this.options.keepAliveTimeoutMs) return;
    this.socket.setTimeout(Math.max(1, left));
  }

  private giveToNodeHttp(): void {
    const socket = this.socket;
    // A client that already ended its side, with such a request behind a pending like: node:http
    // cannot take a stream that has ended, and would abort its requests on that end anyway.
    if (socket.readableEnded) {
      this.finish("");
      return;
    }
    this.done = true;
    socket.off("data", this.onData);
    socket.off("end", this.onEnd);
    socket.off("timeout", this.onTimeout);
    socket.off("drain", this.onDrain);
    socket.off("error", this.onError);
    socket.setTimeout(0);
    const paused = socket.isPaused();
    if (this.buffered !== undefined) socket.unshift(this.buffered);
    this.buffered = undefined;
    this.handOff(socket, this.partialSince === 0 ? undefined : this.partialSince);
    if (paused) socket.resume();
  }
}

function uncork(socket: Socket): void {
  socket.uncork();
}
