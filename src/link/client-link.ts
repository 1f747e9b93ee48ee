// One link of the client half: connects to a peer, proves itself (handshake.ts), then carries
// pipelined requests, numbered and answered in any order, until it breaks; what is in flight
// then fails. Requests not yet answered are bounded in bytes.
import net from "node:net";
import { splitHostPort, type PeerAddress } from "../config.js";
import { digestDiff, type Digest } from "../crdt/index.js";
import type { Codec } from "../replication/codec.js";
import { ReceivedStrings, SentStrings, StringTableError } from "../replication/link-strings.js";
import { replyKindOf, type PeerMessage, type PeerRequest } from "../replication/protocol.js";
import { activeTraceparent } from "../telemetry/trace-context.js";
import type { Metrics } from "../telemetry/types.js";
import { Connection } from "./connection.js";
import { openEnvelope, requestEnvelope } from "./envelope.js";
import {
  Direction,
  FrameError,
  FrameReader,
  FrameSealer,
  MAX_FRAME_BYTES,
  TAG_BYTES,
  plainFrame,
} from "./frames.js";
import {
  HANDSHAKE_TIMEOUT_MS,
  HandshakeError,
  LINK_VERSION,
  MAX_HANDSHAKE_FRAME,
  PROOF_BYTES,
  decodeGreeting,
  encodeHello,
  freshNonce,
  linkKey,
  proofOf,
  proves,
} from "./handshake.js";

/**
 * The most a link holds of requests not yet answered (sent or waiting for the socket): a peer
 * that stops reading makes sends fail past it, never makes this node buffer without bound.
 */
export const MAX_UNANSWERED_BYTES = 8 * 1024 * 1024;

/** Every failure of a send: the peer unreachable, slow, refusing, or answering badly. */
export class PeerRequestError extends Error {
  override readonly name = "PeerRequestError";
  constructor(
    message: string,
    /** The peer's error code when it answered with one (`peer_limit`, `storage_full`, ...). */
    readonly code?: string,
  ) {
    super(message);
  }
}

export interface LinkEvents {
  /** A link to `peer` closed (broken, refused or stopped): the peer is down until it reopens. */
  down(peer: PeerAddress, error: Error): void;
  /** The peer's clock minus this node's (ms, + ahead), as its handshake answer showed it. */
  clockSkew(peer: PeerAddress, skewMs: number): void;
}

interface Waiting {
  readonly kind: PeerMessage["kind"];
  readonly bytes: number;
  readonly timer: NodeJS.Timeout;
  resolve(reply: PeerMessage): void;
  reject(error: Error): void;
}

/** One peer's link: connects and proves itself, then carries requests until it breaks. */
export class ClientLink {
  closed = false;
  unansweredBytes = 0;
  private connection: Connection | undefined;
  private readonly socket: net.Socket;
  private readonly waiting = new Map<number, Waiting>();
  /** The vector of the last sync sent on this link: the next one goes as a difference from it. */
  private lastSyncVv: Digest = new Map();
  /** Requests sent before the handshake completed, in order. */
  private queued: Buffer[] = [];
  private nextId = 1;
  /** The names each direction has carried (requests out, replies in): sent once per link. */
  private readonly sentNames = new SentStrings();
  private readonly receivedNames = new ReceivedStrings();

  constructor(
    private readonly peer: PeerAddress,
    secret: string,
    node: string,
    private readonly codec: Codec,
    private readonly metrics: Pick<Metrics, "peerBytes">,
    private readonly timeoutMs: number,
    private readonly events: LinkEvents,
    named: (node: string) => void = () => {},
  ) {
    const { host, port } = splitHostPort(peer);
    const socket = (this.socket = net.connect({ host, port, noDelay: true }));
    socket.setKeepAlive(true, 10_000);
    const nonce = freshNonce();
    const reader = new FrameReader(MAX_HANDSHAKE_FRAME);
    const timer = setTimeout(
      () =>
        this.close(
          new PeerRequestError(
            `${peer} did not complete the handshake in ${HANDSHAKE_TIMEOUT_MS} ms`,
          ),
        ),
      HANDSHAKE_TIMEOUT_MS,
    );
    timer.unref();
    const onError = (error: Error) =>
      this.close(new PeerRequestError(`${peer} unreachable: ${error.message}`));
    socket.on("error", onError);
    socket.on("close", () => this.close(new PeerRequestError(`${peer} closed the link`)));
    let sentAt = 0;
    socket.once("connect", () => {
      sentAt = Date.now();
      socket.write(plainFrame(encodeHello(nonce, node, sentAt)));
    });
    const onData = (chunk: Buffer) => {
      try {
        if (chunk.toString("latin1", 0, 5) === "HTTP/")
          throw new HandshakeError(
            `${peer} answers HTTP: it speaks peer protocol v2 and must be upgraded to v${LINK_VERSION}`,
            "protocol version",
          );
        reader.push(chunk);
        const body = reader.next();
        if (!body) return;
        const answer = decodeGreeting(body, PROOF_BYTES);
        if (!proves(secret, "server", nonce, answer.nonce, answer.proof))
          throw new HandshakeError(
            `${peer} does not hold this cluster's secret (LIKES_CLUSTER_SECRET differs)`,
            "wrong secret",
          );
        clearTimeout(timer);
        socket.off("data", onData);
        socket.off("error", onError);
        named(answer.node);
        this.events.clockSkew(peer, Math.round(answer.time - (sentAt + Date.now()) / 2));
        socket.write(plainFrame(proofOf(secret, "client", nonce, answer.nonce)));
        const key = linkKey(secret, nonce, answer.nonce);
        this.connection = new Connection(
          socket,
          new FrameSealer(key, Direction.toServer),
          new FrameSealer(key, Direction.toClient),
          reader,
          {
            payload: (payload) => this.answered(payload),
            drained: () => {},
            closed: (error) => this.close(error ?? new PeerRequestError(`${peer} closed the link`)),
            bytes: (direction, n) => this.metrics.peerBytes(direction, n),
          },
        );
        this.connection.start();
        for (const payload of this.queued) this.connection.send(payload);
        this.queued = [];
      } catch (error) {
        clearTimeout(timer);
        this.close(
          error instanceof HandshakeError
            ? error
            : new PeerRequestError(`handshake with ${peer} failed: ${String(error)}`),
        );
      }
    };
    socket.on("data", onData);
  }

  request(request: PeerRequest): Promise<PeerMessage> {
    if (this.closed)
      return Promise.reject(new PeerRequestError(`the link to ${this.peer} is closed`));
    // Between converged nodes a sync then carries no vector at all, however many origins exist.
    const vvDiff = request.kind === "sync";
    const message = this.codec.encode(
      request.kind === "sync"
        ? { ...request, vv: digestDiff(request.vv, this.lastSyncVv) }
        : request,
      this.sentNames,
    );
    if (this.unansweredBytes + message.length > MAX_UNANSWERED_BYTES)
      return Promise.reject(
        new PeerRequestError(
          `${this.peer} is not reading: ${this.unansweredBytes} bytes of requests unanswered`,
        ),
      );
    const id = this.nextId++;
    const payload = requestEnvelope(id, activeTraceparent(), message, vvDiff);
    if (payload.length + TAG_BYTES > MAX_FRAME_BYTES)
      return Promise.reject(
        new PeerRequestError(
          `a ${request.kind} message of ${payload.length} bytes is past the link's frame limit (${MAX_FRAME_BYTES})`,
        ),
      );
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => this.close(new PeerRequestError(`${this.peer} timed out after ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      timer.unref();
      const kind = replyKindOf(request.kind);
      this.waiting.set(id, { kind, bytes: message.length, timer, resolve, reject });
      this.unansweredBytes += message.length;
      if (request.kind === "sync") this.lastSyncVv = request.vv;
      this.sentNames.sent();
      if (this.connection) this.connection.send(payload);
      else this.queued.push(payload);
    });
  }

  close(error: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.connection?.close(error);
    this.socket.destroy();
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.reject(error);
    }
    this.waiting.clear();
    this.queued = [];
    this.unansweredBytes = 0;
    this.events.down(this.peer, error);
  }

  private answered(payload: Buffer): void {
    const envelope = openEnvelope(payload);
    if (envelope.type === "request")
      throw new FrameError("a request frame sent to the client end of a link");
    const waiting = this.waiting.get(envelope.id);
    if (!waiting) throw new FrameError(`an answer to request ${envelope.id}, which is not waiting`);
    this.waiting.delete(envelope.id);
    clearTimeout(waiting.timer);
    this.unansweredBytes -= waiting.bytes;
    if (envelope.type === "error") {
      waiting.reject(
        new PeerRequestError(
          `${this.peer} refused: ${envelope.code}: ${envelope.text}`,
          envelope.code,
        ),
      );
      return;
    }
    try {
      waiting.resolve(this.codec.decode(envelope.message, waiting.kind, this.receivedNames));
    } catch (error) {
      waiting.reject(new PeerRequestError(`reply from ${this.peer} unreadable: ${String(error)}`));
      // The names of later replies could no longer be read: the link closes.
      if (error instanceof StringTableError) throw error;
    }
  }
}
