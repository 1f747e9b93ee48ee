// The client half of the peer link, the adapter of the replication Transport port: one
// long-lived, authenticated connection to each peer this node sends to, on which requests are
// pipelined (several in flight, answered in any order by number). A link that breaks fails what
// is in flight and is opened again by the next send; the replication core's retry backoff paces that.
import net from "node:net";
import { splitHostPort, type PeerAddress } from "../config.js";
import { digestDiff, type Digest } from "../crdt/index.js";
import type { Codec } from "../replication/codec.js";
import type { OutgoingFault } from "../replication/faults.js";
import type { Transport } from "../replication/ports.js";
import type { PeerMessage, PeerRequest, ReplyTo } from "../replication/protocol.js";
import { markFault } from "../telemetry/spans.js";
import { activeTraceparent } from "../telemetry/trace-context.js";
import { noMetrics, type Metrics } from "../telemetry/types.js";
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
// A peer that has not answered in this long is treated as down and its link closed: a push or
// a page of a sync takes milliseconds on a healthy link.
const REQUEST_TIMEOUT_MS = 5_000;

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

/** The faults of LIKES_FAULTS=enabled, as the link asks them (replication/faults.ts). */
export interface LinkFaults {
  /** What happens to a message to `peer` (its node name; undefined before its first answer). */
  outgoing(peer: string | undefined): OutgoingFault;
  /** Whether links `peer` opens to this node are refused. */
  refusesFrom(peer: string): boolean;
}

/** The longest a dropped message's send takes to fail: a lost message is seen as a late one. */
const DROP_WAIT_MS = 50;

/** A send that failed because of an injected fault (LIKES_FAULTS): the peer is unharmed. */
export class FaultError extends PeerRequestError {
  constructor(message: string) {
    super(message, "fault");
  }
}

interface Waiting {
  readonly kind: PeerMessage["kind"];
  readonly bytes: number;
  readonly timer: NodeJS.Timeout;
  resolve(reply: PeerMessage): void;
  reject(error: Error): void;
}

export class LinkTransport implements Transport {
  private readonly links = new Map<PeerAddress, ClientLink>();
  /** Each peer's node name, from its handshake answer. */
  private readonly names = new Map<PeerAddress, string>();

  constructor(
    private readonly secret: string,
    private readonly node: string,
    private readonly codec: Codec,
    private readonly metrics: Pick<Metrics, "peerMessage" | "peerBytes"> = noMetrics,
    private readonly events: LinkEvents = { down: () => {}, clockSkew: () => {} },
    private readonly timeoutMs = REQUEST_TIMEOUT_MS,
    private readonly faults: LinkFaults | undefined = undefined,
  ) {}

  async send<R extends PeerRequest>(peer: PeerAddress, request: R): Promise<ReplyTo<R>> {
    if (this.faults) await this.injectFaults(peer, request.kind);
    let link = this.links.get(peer);
    if (!link || link.closed) {
      link = new ClientLink(
        peer,
        this.secret,
        this.node,
        this.codec,
        this.metrics,
        this.timeoutMs,
        {
          down: (_, error) => {
            if (this.links.get(peer) === link) this.links.delete(peer);
            this.events.down(peer, error);
          },
          clockSkew: (_, skewMs) => this.events.clockSkew(peer, skewMs),
        },
        (name) => this.names.set(peer, name),
      );
      this.links.set(peer, link);
    }
    try {
      const reply = (await link.request(request)) as ReplyTo<R>;
      this.metrics.peerMessage(request.kind, "ok");
      return reply;
    } catch (error) {
      this.metrics.peerMessage(request.kind, "error");
      throw error;
    }
  }

  /** Delays a message, or fails its send, as the faults set for its peer say. */
  private async injectFaults(peer: PeerAddress, kind: PeerRequest["kind"]): Promise<void> {
    const name = this.names.get(peer);
    const fault = (this.faults as LinkFaults).outgoing(name);
    const what = fault.cut ? "cut" : fault.drop ? "dropped" : fault.delayMs > 0 ? "delayed" : "";
    if (what === "") return;
    markFault(what, { delay_ms: fault.delayMs });
    // A dropped message fails as a lost one would, late (but not as late as a timeout).
    const wait = fault.cut
      ? 0
      : fault.drop
        ? Math.min(fault.delayMs || DROP_WAIT_MS, DROP_WAIT_MS)
        : fault.delayMs;
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (fault.cut || fault.drop) {
      this.metrics.peerMessage(kind, "error");
      throw new FaultError(`${what} by a fault (LIKES_FAULTS) on the link to ${name ?? peer}`);
    }
  }

  /** Bytes held for a peer's link: its unanswered requests (what MAX_UNANSWERED_BYTES bounds). */
  unanswered(peer: PeerAddress): number {
    return this.links.get(peer)?.unansweredBytes ?? 0;
  }

  close(): void {
    for (const link of this.links.values())
      link.close(new PeerRequestError("this node is stopping"));
    this.links.clear();
  }
}

/** One peer's link: connects and proves itself, then carries requests until it breaks. */
class ClientLink {
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
            `${peer} answers HTTP: it speaks peer protocol v2 and must be upgraded to v3`,
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
      const kind = request.kind === "deltas" ? "deltas-reply" : "sync-reply";
      this.waiting.set(id, { kind, bytes: message.length, timer, resolve, reject });
      this.unansweredBytes += message.length;
      if (request.kind === "sync") this.lastSyncVv = request.vv;
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
      waiting.resolve(this.codec.decode(envelope.message, waiting.kind));
    } catch (error) {
      waiting.reject(new PeerRequestError(`reply from ${this.peer} unreadable: ${String(error)}`));
    }
  }
}
