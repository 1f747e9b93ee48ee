import { context, propagation, trace } from "@opentelemetry/api";
import http, { type OutgoingHttpHeaders } from "node:http";
import { noMetrics, type Metrics } from "../telemetry/types.js";
import type { Codec } from "./codec.js";
import type { PeerAddress, Transport } from "./ports.js";
import { PROTOCOL_PATHS, type PeerRequest, type ReplyTo } from "./protocol.js";
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, signatureOf, verify } from "./signing.js";

/** Reply size cap: far above a page of 5000 entries of at most ~560 bytes each. */
export const MAX_PEER_BODY_BYTES = 16 * 1024 * 1024;

export class PeerRequestError extends Error {
  override readonly name = "PeerRequestError";
}

/** The peer protocol over HTTP/1.1 with keep-alive, every request and reply signed. */
export class HttpTransport implements Transport {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 4, timeout: 10_000 });

  constructor(
    private readonly secret: string,
    private readonly codec: Codec,
    private readonly metrics: Pick<Metrics, "peerMessage" | "peerBytes"> = noMetrics,
    private readonly timeoutMs = 5_000,
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
    const timestamp = String(Date.now());
    const { host, port } = splitAddress(peer);
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
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_PEER_BODY_BYTES) req.destroy(new PeerRequestError("reply too large"));
            else chunks.push(chunk);
          });
          res.on("error", reject);
          res.on("end", () => {
            const reply = Buffer.concat(chunks);
            this.metrics.peerBytes("in", reply.length);
            try {
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
              resolve(
                this.codec.decode(
                  reply,
                  request.kind === "deltas" ? "deltas-reply" : "sync-reply",
                ) as ReplyTo<R>,
              );
            } catch (error) {
              reject(error instanceof Error ? error : new PeerRequestError(String(error)));
            }
          });
        },
      );
      // Nagle's algorithm would hold a small push until the peer's delayed ACK (up to 40 ms).
      req.on("socket", (socket) => socket.setNoDelay(true));
      req.on("timeout", () =>
        req.destroy(new PeerRequestError(`${peer} timed out after ${this.timeoutMs} ms`)),
      );
      req.on("error", reject);
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

function splitAddress(address: PeerAddress): { host: string; port: number } {
  const cut = address.lastIndexOf(":");
  return {
    host: address.slice(0, cut).replace(/^\[|\]$/g, ""),
    port: Number(address.slice(cut + 1)),
  };
}
