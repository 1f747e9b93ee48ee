// The client half of the HTTP adapter of the replication Transport port: the peer protocol over
// HTTP/1.1 with keep-alive, every request and reply signed (signing.ts).
import { context, propagation, trace } from "@opentelemetry/api";
import http, { type OutgoingHttpHeaders } from "node:http";
import { splitHostPort, type PeerAddress } from "../../config.js";
import type { Codec } from "../../replication/codec.js";
import type { Transport } from "../../replication/ports.js";
import { PROTOCOL_PATHS, type PeerRequest, type ReplyTo } from "../../replication/protocol.js";
import { noMetrics, type Metrics } from "../../telemetry/types.js";
import { readBody } from "../body.js";
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, signatureOf, verify } from "./signing.js";

/** Reply size cap: far above a page of 5000 entries of at most ~560 bytes each. */
export const MAX_PEER_BODY_BYTES = 16 * 1024 * 1024;
// A node has at most one push and one sync in flight per peer, plus a greeting or a retry
// probe: four sockets cover that, and keep a slow peer from taking more file descriptors.
const MAX_SOCKETS_PER_PEER = 4;
// A pooled socket silent this long is closed; the peer server's 5 s keep-alive timeout usually
// closes an idle one first, and a busy one is bounded by the request timeout below.
const IDLE_SOCKET_MS = 10_000;
// A peer that has not answered in this long is treated as down (retried with backoff): a push
// or a page of a sync takes milliseconds on a healthy link.
const REQUEST_TIMEOUT_MS = 5_000;

/** Every failure of a send: the peer unreachable, slow, refusing, or answering badly. */
export class PeerRequestError extends Error {
  override readonly name = "PeerRequestError";
}

export class HttpTransport implements Transport {
  private readonly agent = new http.Agent({
    keepAlive: true,
    maxSockets: MAX_SOCKETS_PER_PEER,
    timeout: IDLE_SOCKET_MS,
  });

  constructor(
    private readonly secret: string,
    private readonly codec: Codec,
    private readonly metrics: Pick<Metrics, "peerMessage" | "peerBytes"> = noMetrics,
    /** Told, at every answer, how far the peer's clock is from this node's (ms, + ahead). */
    private readonly onClockSkew: (peer: PeerAddress, skewMs: number) => void = () => {},
    private readonly timeoutMs = REQUEST_TIMEOUT_MS,
  ) {}

  async send<R extends PeerRequest>(peer: PeerAddress, request: R): Promise<ReplyTo<R>> {
    try {
      const reply = await this.exchange(peer, request);
      this.metrics.peerMessage(request.kind, "ok");
      return reply;
    } catch (error) {
      this.metrics.peerMessage(request.kind, "error");
      throw error;
    }
  }

  close(): void {
    this.agent.destroy();
  }

  private exchange<R extends PeerRequest>(peer: PeerAddress, request: R): Promise<ReplyTo<R>> {
    const path = PROTOCOL_PATHS[request.kind];
    const body = this.codec.encode(request);
    const sentAt = Date.now();
    const timestamp = String(sentAt);
    const { host, port } = splitHostPort(peer);
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host,
          port,
          path,
          method: "POST",
          agent: this.agent,
          timeout: this.timeoutMs,
          headers: withTraceContext({
            "content-type": this.codec.contentType,
            "content-length": body.length,
            [TIMESTAMP_HEADER]: timestamp,
            [SIGNATURE_HEADER]: sign(this.secret, "POST", path, timestamp, body),
          }),
        },
        (res) => {
          const skew = clockSkewOf(res.headers.date, sentAt, Date.now());
          if (skew !== undefined) this.onClockSkew(peer, skew);
          readBody(res, MAX_PEER_BODY_BYTES)
            .then(
              (reply) => {
                this.metrics.peerBytes("in", reply.length);
                if (res.statusCode !== 200)
                  throw new PeerRequestError(
                    `${peer} answered ${res.statusCode}: ${reply.toString("utf8", 0, 200)}`,
                  );
                // Replies are signed over the request path with their own timestamp.
                const verdict = verify(
                  this.secret,
                  "REPLY",
                  path,
                  signatureOf(res.headers),
                  reply,
                  Date.now(),
                );
                if (!verdict.ok)
                  throw new PeerRequestError(`reply from ${peer} rejected: ${verdict.reason}`);
                const kind = request.kind === "deltas" ? "deltas-reply" : "sync-reply";
                resolve(this.codec.decode(reply, kind) as ReplyTo<R>);
              },
              (error: unknown) => {
                req.destroy();
                throw new PeerRequestError(
                  `reply from ${peer} unreadable: ${error instanceof Error ? error.message : String(error)}`,
                );
              },
            )
            .catch((error: unknown) =>
              reject(error instanceof Error ? error : new PeerRequestError(String(error))),
            );
        },
      );
      // Nagle's algorithm would hold a small push until the peer's delayed ACK (up to 40 ms).
      req.on("socket", (socket) => socket.setNoDelay(true));
      req.on("timeout", () =>
        req.destroy(new PeerRequestError(`${peer} timed out after ${this.timeoutMs} ms`)),
      );
      req.on("error", (error) =>
        reject(
          error instanceof PeerRequestError
            ? error
            : new PeerRequestError(`${peer} unreachable: ${error.message}`, { cause: error }),
        ),
      );
      this.metrics.peerBytes("out", body.length);
      req.end(body);
    });
  }
}

/** The active span's W3C context (the push span of sampled likes) for the receiver to link to. */
function withTraceContext(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  if (trace.getActiveSpan()?.isRecording()) propagation.inject(context.active(), headers);
  return headers;
}

/**
 * The peer's clock minus ours, from the `Date` header of any answer (a 401 for a stale request
 * too): whole seconds, compared with the middle of the exchange, so ±1 s. Enough to show why
 * a peer refuses this node's requests (signatures older or newer than 30 s are refused).
 */
export function clockSkewOf(
  date: string | undefined,
  sentAt: number,
  receivedAt: number,
): number | undefined {
  const peerTime = date === undefined ? NaN : Date.parse(date);
  if (Number.isNaN(peerTime)) return undefined;
  // The header truncates to the second: its middle is half a second later.
  return Math.round(peerTime + 500 - (sentAt + receivedAt) / 2);
}
