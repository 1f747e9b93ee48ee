import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import type { Logger, Metrics } from "../telemetry/types.js";
import type { Codec } from "./codec.js";
import { MAX_PEER_BODY_BYTES } from "./http-transport.js";
import {
  MalformedMessageError,
  PROTOCOL_PATHS,
  RETIRED_PATHS,
  type PeerReply,
  type PeerRequest,
} from "./protocol.js";
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, signatureOf, verify } from "./signing.js";

const ROUTES: Readonly<Record<string, PeerRequest["kind"]>> = {
  [PROTOCOL_PATHS.deltas]: "deltas",
  [PROTOCOL_PATHS.sync]: "sync",
};
const SERVED = `${PROTOCOL_PATHS.deltas} and ${PROTOCOL_PATHS.sync}`;
const UPGRADE = `this node speaks peer protocol v2 (${SERVED}); the sender speaks an older one and must be upgraded`;
// A sync request carries only a version vector.
const MAX_SYNC_BODY_BYTES = 1024 * 1024;

export interface PeerServerDeps {
  readonly secret: string;
  readonly codec: Codec;
  readonly handle: (request: PeerRequest) => Promise<PeerReply>;
  readonly logger: Logger;
  readonly metrics: Pick<Metrics, "peerMessage" | "peerBytes">;
}

/**
 * The peer port: `/peer/v2/*` only; an older version's path gets 410 and a clear message. A
 * request is read whole (size-capped), its signature checked, then decoded and guarded; it
 * reaches the replicator only if all of that holds.
 */
export function peerListener(deps: PeerServerDeps): RequestListener {
  // Remote addresses already logged as speaking an older protocol: such a peer retries every
  // few ms, and one line per address says it all.
  const warned = new Set<string>();
  return (req, res) => {
    serve(deps, warned, req, res).catch((error: unknown) => {
      deps.logger.error("peer request failed", { error: String(error) });
      if (!res.headersSent) fail(res, 500, "internal", "internal error");
      else res.destroy();
    });
  };
}

async function serve(
  deps: PeerServerDeps,
  warned: Set<string>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const path = (req.url ?? "").split("?")[0] ?? "";
  const kind = ROUTES[path];
  if (kind === undefined && RETIRED_PATHS.includes(path)) {
    const remote = req.socket.remoteAddress ?? "unknown";
    if (!warned.has(remote) && warned.size < 256) {
      warned.add(remote);
      deps.logger.warn("peer speaks an older protocol", { path, remote });
    }
    return fail(res, 410, "protocol_version_unsupported", UPGRADE);
  }
  if (kind === undefined) return fail(res, 404, "not_found", `the peer port serves ${SERVED}`);
  if (req.method !== "POST") {
    res.setHeader("Allow", "POST");
    return fail(res, 405, "method_not_allowed", "use POST");
  }
  const limit = kind === "sync" ? MAX_SYNC_BODY_BYTES : MAX_PEER_BODY_BYTES;
  const body = await readBody(req, limit);
  if (body === undefined)
    return fail(res, 413, "payload_too_large", `the body is over ${limit} bytes`);
  deps.metrics.peerBytes("in", body.length);
  const verdict = verify(deps.secret, "POST", path, signatureOf(req.headers), body, Date.now());
  if (!verdict.ok) {
    deps.logger.warn("peer request refused", {
      reason: verdict.reason,
      remote: req.socket.remoteAddress,
    });
    return fail(res, 401, "unauthorized", `request refused: ${verdict.reason}`);
  }
  if (req.headers["content-type"] !== deps.codec.contentType)
    return fail(
      res,
      415,
      "unsupported_media_type",
      `peer messages are ${deps.codec.contentType} (peer protocol v2)`,
    );
  let request: PeerRequest;
  try {
    request = deps.codec.decode(body, kind) as PeerRequest;
  } catch (error) {
    if (!(error instanceof MalformedMessageError)) throw error;
    deps.metrics.peerMessage(kind, "rejected");
    deps.logger.warn("malformed peer request", {
      reason: error.message,
      remote: req.socket.remoteAddress,
    });
    return fail(res, 400, "malformed", error.message);
  }
  const reply = deps.codec.encode(await deps.handle(request));
  const timestamp = String(Date.now());
  res.writeHead(200, {
    "content-type": deps.codec.contentType,
    "content-length": reply.length,
    [TIMESTAMP_HEADER]: timestamp,
    [SIGNATURE_HEADER]: sign(deps.secret, "REPLY", path, timestamp, reply),
  });
  deps.metrics.peerBytes("out", reply.length);
  res.end(reply);
}

/** The whole body, or undefined once it passes `limit` (the rest is not read). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"]);
    if (declared > limit) {
      req.resume();
      resolve(undefined);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners("data");
        req.resume();
        resolve(undefined);
      } else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function fail(res: ServerResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}
