// The peer port (protocol v7): a TCP server whose connections each become a peer link once the
// handshake proves that the caller holds the cluster secret. Nothing but the handshake is read
// from a connection before that; after it, each request frame is decoded in full, handed to the
// replication core, and answered on the same link once handled (after the commit that holds it).
import net, { type AddressInfo, type Socket } from "node:net";
import { errorAnswer } from "../http/errors.js";
import { patchDigest, type Digest, type OriginId } from "../crdt/index.js";
import type { Codec } from "../replication/codec.js";
import { RefusalLog } from "../replication/limits.js";
import { ReceivedStrings, SentStrings, StringTableError } from "../replication/link-strings.js";
import {
  MalformedMessageError,
  isRequestKind,
  type PeerReply,
  type PeerRequest,
} from "../replication/protocol.js";
import { withCaller } from "../telemetry/trace-context.js";
import type { Logger, Metrics } from "../telemetry/types.js";
import { Connection } from "./connection.js";
import { errorEnvelope, openEnvelope, replyEnvelope } from "./envelope.js";
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
  encodeAnswer,
  freshNonce,
  linkKey,
  looksLikeHttp,
  proofOf,
  proves,
} from "./handshake.js";

/** A link stops reading while this much of its replies waits in the socket, or this many requests are being handled. */
export const SERVER_HIGH_WATER_BYTES = 4 * 1024 * 1024;
export const MAX_REQUESTS_IN_HANDLING = 64;

const V2_REFUSAL = JSON.stringify({
  error: {
    code: "protocol_version_unsupported",
    message: `this node speaks peer protocol v${LINK_VERSION} (an authenticated TCP link, not HTTP); the sender speaks v2 and must be upgraded`,
  },
});

export interface LinkServerDeps {
  readonly secret: string;
  readonly node: string;
  readonly codec: Codec;
  readonly handle: (request: PeerRequest) => Promise<PeerReply>;
  readonly logger: Logger;
  readonly metrics: Pick<Metrics, "peerMessage" | "peerBytes">;
  /** LIKES_FAULTS: whether links from a node are refused now (a cut "in" or "both"). */
  readonly refusesFrom?: (node: string) => boolean;
}

export class LinkServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<Socket>();
  // A refused peer reconnects every few ms: one line a minute per address and reason says it all.
  private readonly refusals: RefusalLog;

  constructor(private readonly deps: LinkServerDeps) {
    this.refusals = new RefusalLog(
      () => Date.now(),
      (message, fields) => deps.logger.warn(message, fields),
      undefined,
      "peer link refused",
    );
    this.server = net.createServer((socket) => this.accept(socket));
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

  /** Stops accepting and closes every link (their peers see them end and reconnect elsewhere). */
  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private refuse(socket: Socket, error: Error, reason: string): void {
    this.deps.metrics.peerMessage(reason === "frame" ? "frame" : "handshake", "rejected");
    this.refusals.refused(socket.remoteAddress ?? "unknown", error, reason);
  }

  private refuseV2(socket: Socket): void {
    this.refuse(
      socket,
      new HandshakeError("an HTTP request: peer protocol v2", "protocol version"),
      "protocol v2",
    );
    socket.end(
      `HTTP/1.1 410 Gone\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(V2_REFUSAL)}\r\nconnection: close\r\n\r\n${V2_REFUSAL}`,
    );
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    socket.setNoDelay(true);
    // A caller that vanished without a FIN (a pod gone with its node) is found by TCP keep-alive.
    socket.setKeepAlive(true, 10_000);
    socket.on("error", () => socket.destroy());
    const reader = new FrameReader(MAX_HANDSHAKE_FRAME);
    const clientNonce: Buffer[] = [];
    const serverNonce = freshNonce();
    // The first bytes, kept until they tell an HTTP request from a greeting.
    let start: Buffer | undefined = Buffer.alloc(0);
    let caller = "";
    const timer = setTimeout(() => {
      this.refuse(socket, new HandshakeError("no handshake within 5 s", "malformed"), "timeout");
      socket.destroy();
    }, HANDSHAKE_TIMEOUT_MS);
    timer.unref();
    // A caller that hangs up during the handshake was not refused: nothing to count or log.
    socket.once("close", () => clearTimeout(timer));
    const fail = (error: unknown) => {
      clearTimeout(timer);
      socket.off("data", onData);
      const reason = error instanceof HandshakeError ? error.reason : "malformed";
      this.refuse(socket, error instanceof Error ? error : new Error(String(error)), reason);
      socket.destroy();
    };
    const onData = (chunk: Buffer) => {
      try {
        if (start) {
          start = Buffer.concat([start, chunk]);
          const http = looksLikeHttp(start);
          if (http === undefined) return;
          chunk = start;
          start = undefined;
          if (http) {
            clearTimeout(timer);
            socket.off("data", onData);
            this.refuseV2(socket);
            return;
          }
        }
        reader.push(chunk);
        for (let body = reader.next(); body; body = reader.next()) {
          if (clientNonce.length === 0) {
            const hello = decodeGreeting(body, 0);
            if (this.deps.refusesFrom?.(hello.node)) {
              // A cut by an injected fault: the caller sees its link close, as in a partition.
              clearTimeout(timer);
              socket.destroy();
              return;
            }
            caller = hello.node;
            clientNonce.push(Buffer.from(hello.nonce));
            const proof = proofOf(this.deps.secret, "server", hello.nonce, serverNonce);
            socket.write(plainFrame(encodeAnswer(serverNonce, proof, this.deps.node)));
            continue;
          }
          const nonce = clientNonce[0] as Buffer;
          if (
            body.length !== PROOF_BYTES ||
            !proves(this.deps.secret, "client", nonce, serverNonce, body)
          )
            throw new HandshakeError(
              "the caller does not hold this cluster's secret",
              "wrong secret",
            );
          clearTimeout(timer);
          socket.off("data", onData);
          // Frames after the proof, already read, stay in the reader for the link.
          this.open(socket, linkKey(this.deps.secret, nonce, serverNonce), reader, caller);
          return;
        }
      } catch (error) {
        fail(error);
      }
    };
    socket.on("data", onData);
  }

  private open(socket: Socket, key: Buffer, reader: FrameReader, caller: string): void {
    const { codec, handle, metrics, logger } = this.deps;
    const remote = socket.remoteAddress ?? "unknown";
    let handling = 0;
    // The vector of the last sync on this link: the next one may come as a difference from it.
    let lastSyncVv: Digest = new Map();
    // The names each direction has carried (requests in, replies out): sent once per link.
    const receivedNames = new ReceivedStrings();
    const sentNames = new SentStrings();
    // Read from the connection, not kept here: a resume hands on frames read before the pause,
    // and each of them comes back here before resume() returns.
    const throttle = () => {
      const busy =
        handling >= MAX_REQUESTS_IN_HANDLING || connection.buffered >= SERVER_HIGH_WATER_BYTES;
      if (busy && !connection.paused) connection.pause();
      else if (!busy && connection.paused) connection.resume();
    };
    const answer = (id: number, reply: PeerReply) => {
      const bytes = codec.encode(reply, sentNames);
      const payload = replyEnvelope(id, bytes);
      if (payload.length + TAG_BYTES > MAX_FRAME_BYTES) {
        refuseRequest(
          id,
          reply.kind,
          new Error(`a reply of ${payload.length} bytes is past the frame limit`),
        );
        return;
      }
      sentNames.sent();
      connection.send(payload);
    };
    const refuseRequest = (id: number, kind: string, error: unknown) => {
      if (error instanceof MalformedMessageError) {
        metrics.peerMessage(kind, "rejected");
        this.refusals.refused(remote, error, "malformed");
        connection.send(errorEnvelope(id, "malformed", error.message));
        return;
      }
      const { status, body } = errorAnswer(error);
      if (status >= 500 && body.error.code === "internal")
        logger.error("peer request failed", { peer: remote, error });
      connection.send(errorEnvelope(id, body.error.code, body.error.message));
    };
    const connection = new Connection(
      socket,
      new FrameSealer(key, Direction.toClient),
      new FrameSealer(key, Direction.toServer),
      reader,
      {
        payload: (payload) => {
          // A cut set while the link is open ends it, as a partition would.
          if (this.deps.refusesFrom?.(caller)) {
            socket.destroy();
            return;
          }
          const envelope = openEnvelope(payload);
          if (envelope.type !== "request")
            throw new FrameError(`a ${envelope.type} frame sent to the server end of a link`);
          const { id, message, traceparent, vvDiff } = envelope;
          // A request of any request kind; anything else fails decode as a push.
          const said = codec.kindOf(message);
          const kind = said !== undefined && isRequestKind(said) ? said : "deltas";
          let request: PeerRequest;
          try {
            request = codec.decode(message, kind, receivedNames) as PeerRequest;
          } catch (error) {
            // A sync lost here would leave the two ends with different vectors to patch, and
            // names not read, different tables.
            if (vvDiff || error instanceof StringTableError) throw error;
            refuseRequest(id, kind, error);
            return;
          }
          if (request.kind === "sync") {
            const vv = vvDiff ? withoutZeros(patchDigest(lastSyncVv, request.vv)) : request.vv;
            lastSyncVv = vv;
            request = { ...request, vv };
          } else if (vvDiff) throw new FrameError("a vector difference on a push");
          handling++;
          throttle();
          withCaller(traceparent, () => handle(request))
            .then(
              (reply) => answer(id, reply),
              (error: unknown) => refuseRequest(id, kind, error),
            )
            .finally(() => {
              handling--;
              throttle();
            });
        },
        drained: () => throttle(),
        bytes: (direction, n) => metrics.peerBytes(direction, n),
        closed: (error) => {
          if (error instanceof FrameError || error instanceof MalformedMessageError)
            this.refuse(socket, error, "frame");
        },
      },
    );
    connection.start();
  }
}

/** A vector without the zero seqs a difference writes for origins it no longer holds. */
function withoutZeros(vv: Map<OriginId, number>): Map<OriginId, number> {
  for (const [origin, seq] of vv) if (seq === 0) vv.delete(origin);
  return vv;
}
