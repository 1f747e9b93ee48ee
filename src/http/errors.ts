// The errors the HTTP edge answers, each a class with a stable `name`, and the one place where
// an error becomes a status, a code, a message and headers (as hono's HTTPException + onError).
// The public and admin ports both answer through `errorAnswer` (respond.ts writes it).

import { PeerLimitError } from "../replication/limits.js";
import { SnapshotGoneError } from "../replication/snapshot-source.js";
import { WritesStoppedError } from "../replication/types.js";
import { StorageFullError, StoreCorruptError } from "../store/types.js";

type Headers = Readonly<Record<string, string>>;
const NO_HEADERS: Headers = Object.freeze({});

/** An error a client caused, or a refusal the node chose: it maps to one status and code. */
export class HttpError extends Error {
  override readonly name: string = "HttpError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Headers = NO_HEADERS,
  ) {
    super(message);
  }
}

export class InvalidInputError extends HttpError {
  override readonly name = "InvalidInputError";
  constructor(code: string, message: string) {
    super(400, code, message);
  }
}

/** Bytes that are not UTF-8, in a body or a query: refused rather than altered into U+FFFD. */
export class InvalidUtf8Error extends HttpError {
  override readonly name = "InvalidUtf8Error";
  constructor(where: "body" | "query") {
    super(400, "invalid_utf8", `the ${where} is not valid UTF-8`);
  }
}

export class RequestAbortedError extends HttpError {
  override readonly name = "RequestAbortedError";
  constructor() {
    super(400, "request_aborted", "the request was aborted");
  }
}

/**
 * What node:http could not read as HTTP/1.1 (its parser's reason), a head past its limit, a
 * request past its time limits, an `Expect` it does not meet: answered as JSON like the rest.
 */
export class MalformedRequestError extends HttpError {
  override readonly name = "MalformedRequestError";
  constructor(reason: string) {
    super(400, "malformed_request", `not a valid HTTP/1.1 request: ${reason}`, {
      connection: "close",
    });
  }
}

export class HeadersTooLargeError extends HttpError {
  override readonly name = "HeadersTooLargeError";
  constructor() {
    super(431, "headers_too_large", "the request line and headers are over the 16 KiB limit", {
      connection: "close",
    });
  }
}

export class RequestTimeoutError extends HttpError {
  override readonly name = "RequestTimeoutError";
  constructor() {
    super(408, "request_timeout", "the request did not arrive in time", { connection: "close" });
  }
}

export class ExpectationFailedError extends HttpError {
  override readonly name = "ExpectationFailedError";
  constructor(expect: string) {
    super(417, "expectation_failed", `Expect: ${expect} is not supported; only 100-continue`, {
      connection: "close",
    });
  }
}

export class NotFoundError extends HttpError {
  override readonly name = "NotFoundError";
  constructor(message: string) {
    super(404, "not_found", message);
  }
}

export class MethodNotAllowedError extends HttpError {
  override readonly name = "MethodNotAllowedError";
  constructor(method: string, allow: readonly string[]) {
    super(405, "method_not_allowed", `${method} is not allowed here; use ${allow.join(", ")}`, {
      allow: allow.join(", "),
    });
  }
}

export class PayloadTooLargeError extends HttpError {
  override readonly name = "PayloadTooLargeError";
  constructor(limit: number) {
    super(413, "payload_too_large", `the body is over the ${limit}-byte limit`);
  }
}

export class UnsupportedMediaTypeError extends HttpError {
  override readonly name = "UnsupportedMediaTypeError";
  constructor(message: string) {
    super(415, "unsupported_media_type", message);
  }
}

export class NotReadyError extends HttpError {
  override readonly name = "NotReadyError";
  constructor(reason: string) {
    super(503, "not_ready", reason);
  }
}

/** A request that reached a node after it began to stop: retry on another node. */
export class ShuttingDownError extends HttpError {
  override readonly name = "ShuttingDownError";
  constructor() {
    super(503, "shutting_down", "the node is stopping; retry on another node", {
      connection: "close",
    });
  }
}

export interface ErrorAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: { readonly error: { readonly code: string; readonly message: string } };
}

const INTERNAL: ErrorAnswer = {
  status: 500,
  headers: NO_HEADERS,
  body: { error: { code: "internal", message: "internal error" } },
};

/** The errors of the layers below that have an answer of their own: the rest are bugs (500). */
function fromBelow(error: unknown): HttpError | undefined {
  // Not the client's doing, but an answer all the same: the store cannot take it now.
  if (error instanceof StorageFullError)
    return new HttpError(503, "storage_full", error.message, {
      "retry-after": String(error.retryAfterSeconds),
    });
  if (error instanceof StoreCorruptError)
    return new HttpError(503, "storage_corrupt", error.message);
  // A peer's message past what this node holds for a peer (replication/limits.ts).
  if (error instanceof PeerLimitError) return new HttpError(400, "peer_limit", error.message);
  // A chunk of a snapshot removed (read to its end, idle, or the node restarted).
  if (error instanceof SnapshotGoneError) return new HttpError(410, "snapshot_gone", error.message);
  // A like whose body came after the stop's hand-off began.
  if (error instanceof WritesStoppedError) return new ShuttingDownError();
  return undefined;
}

/** The answer to an error; `internal` for anything else (a bug, logged by the caller). */
export function errorAnswer(error: unknown): ErrorAnswer {
  const known = error instanceof HttpError ? error : fromBelow(error);
  if (!known) return INTERNAL;
  return {
    status: known.status,
    headers: known.headers,
    body: { error: { code: known.code, message: known.message } },
  };
}
