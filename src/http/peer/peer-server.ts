// The peer port, the server half of the HTTP adapter of the replication Transport port: it
// authenticates and decodes a peer's request and hands it to the protocol handler.
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import type { Codec } from "../../replication/codec.js";
import {
  MalformedMessageError,
  PROTOCOL_PATHS,
  RETIRED_PATHS,
  type PeerReply,
  type PeerRequest,
} from "../../replication/protocol.js";
import type { Logger, Metrics } from "../../telemetry/types.js";
import { readBody } from "../body.js";
import {
  InvalidInputError,
  MethodNotAllowedError,
  NotFoundError,
  ProtocolVersionError,
  UnauthorizedError,
  UnsupportedMediaTypeError,
} from "../errors.js";
import { RefusalLog } from "../../replication/limits.js";
import { sendError } from "../respond.js";
import { MAX_PEER_BODY_BYTES } from "./http-transport.js";
import {
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  sign,
  signatureOf,
  verify,
  verifyHead,
  type Verdict,
} from "./signing.js";

const ROUTES: Readonly<Record<string, PeerRequest["kind"]>> = {
  [PROTOCOL_PATHS.deltas]: "deltas",
  [PROTOCOL_PATHS.sync]: "sync",
};
const SERVED = `${PROTOCOL_PATHS.deltas} and ${PROTOCOL_PATHS.sync}`;
const UPGRADE = `this node speaks peer protocol v2 (${SERVED}); the sender speaks an older one and must be upgraded`;
// A sync request carries only a version vector.
const MAX_SYNC_BODY_BYTES = 1024 * 1024;
const ALLOW = ["POST"] as const;

export interface PeerServerDeps {
  readonly secret: string;
  readonly codec: Codec;
  readonly handle: (request: PeerRequest) => Promise<PeerReply>;
  readonly logger: Logger;
  readonly metrics: Pick<Metrics, "peerMessage" | "peerBytes">;
}

/**
 * Serves `/peer/v2/*` only; an older version's path gets 410 and a clear message. The path is
 * exact (a query is refused: the signature covers the path only), and the head is checked
 * (signature headers, type, no Content-Encoding) before the body is read, size-capped, its HMAC
 * verified, then decoded and guarded; a request reaches the replicator only if all of that holds.
 */
export function peerListener(deps: PeerServerDeps): RequestListener {
  // A refused peer retries every few ms: one line a minute per address and reason says it all.
  const refusals = new RefusalLog(
    () => Date.now(),
    (message, fields) => deps.logger.warn(message, fields),
    undefined,
    "peer request refused",
  );
  return (req, res) => {
    serve(deps, refusals, req, res).catch((error: unknown) =>
      sendError(res, error, deps.logger, { port: "peer", path: req.url }),
    );
  };
}

async function serve(
  deps: PeerServerDeps,
  refusals: RefusalLog,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = req.url ?? "";
  const mark = url.indexOf("?");
  const path = mark === -1 ? url : url.slice(0, mark);
  const kind = ROUTES[path];
  if (kind === undefined && RETIRED_PATHS.includes(path)) {
    const error = new ProtocolVersionError(UPGRADE);
    refusals.refused(remote(req), error, `older protocol: ${path}`);
    throw error;
  }
  if (kind === undefined) throw new NotFoundError(`the peer port serves ${SERVED}`);
  if (req.method !== "POST") throw new MethodNotAllowedError(req.method ?? "", ALLOW);
  const headers = signatureOf(req.headers);
  refuseUnless(refusals, req, verifyHead(headers, Date.now()));
  if (mark !== -1)
    throw new InvalidInputError("invalid_query", `the peer port serves ${SERVED}, with no query`);
  if (req.headers["content-type"] !== deps.codec.contentType)
    throw new UnsupportedMediaTypeError(
      `peer messages are ${deps.codec.contentType} (peer protocol v2)`,
    );
  const body = await readBody(req, kind === "sync" ? MAX_SYNC_BODY_BYTES : MAX_PEER_BODY_BYTES);
  deps.metrics.peerBytes("in", body.length);
  refuseUnless(refusals, req, verify(deps.secret, "POST", path, headers, body, Date.now()));
  let request: PeerRequest;
  try {
    request = deps.codec.decode(body, kind) as PeerRequest;
  } catch (error) {
    if (!(error instanceof MalformedMessageError)) throw error;
    deps.metrics.peerMessage(kind, "rejected");
    const refused = new InvalidInputError("malformed", error.message);
    refusals.refused(remote(req), refused, "malformed");
    throw refused;
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

function refuseUnless(refusals: RefusalLog, req: IncomingMessage, verdict: Verdict): void {
  if (verdict.ok) return;
  const error = new UnauthorizedError(verdict.reason);
  // A peer whose clock is off, or that holds another secret, retries every few ms: one line a
  // minute per address and reason, with how many were refused since.
  refusals.refused(remote(req), error, verdict.reason);
  throw error;
}

function remote(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? "unknown";
}
