import type { ErrorRequestHandler, Response } from "express";
import { StorageFullError, StoreCorruptError } from "../store/types.js";
import type { Logger } from "../telemetry/types.js";

/** An error a client caused: it maps to one 4xx status and a stable code, in one place. */
export class ApiError extends Error {
  override readonly name: string = "ApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class InvalidInputError extends ApiError {
  override readonly name = "InvalidInputError";
  constructor(code: string, message: string) {
    super(400, code, message);
  }
}

export class NotFoundError extends ApiError {
  override readonly name = "NotFoundError";
  constructor(path: string) {
    super(404, "not_found", `no such resource: ${path}`);
  }
}

export class MethodNotAllowedError extends ApiError {
  override readonly name = "MethodNotAllowedError";
  constructor(
    method: string,
    readonly allow: readonly string[],
  ) {
    super(405, "method_not_allowed", `${method} is not allowed here; use ${allow.join(", ")}`);
  }
}

export class UnsupportedMediaTypeError extends ApiError {
  override readonly name = "UnsupportedMediaTypeError";
  constructor(message = "the body must be JSON (Content-Type: application/json)") {
    super(415, "unsupported_media_type", message);
  }
}

export function sendError(res: Response, status: number, code: string, message: string): void {
  res.status(status).json({ error: { code, message } });
}

// What body-parser reports, by its error `type`, mapped to our codes.
const BODY_ERRORS: Readonly<Record<string, [number, string, string]>> = {
  "entity.too.large": [413, "payload_too_large", "the body is over the 16 KiB limit"],
  "entity.parse.failed": [400, "invalid_json", "the body is not valid JSON"],
  "encoding.unsupported": [415, "unsupported_media_type", "unsupported content encoding"],
  "charset.unsupported": [415, "unsupported_media_type", "the body must be UTF-8 JSON"],
  "request.aborted": [400, "request_aborted", "the request was aborted"],
  "request.size.invalid": [400, "invalid_body", "the body does not match its Content-Length"],
};

/** The answer to an error a client caused, or undefined for anything else (a bug: 500). */
export function clientErrorOf(
  error: unknown,
): [status: number, code: string, message: string] | undefined {
  if (error instanceof ApiError) return [error.status, error.code, error.message];
  // Not the client's doing, but an answer all the same: the store cannot take it now.
  if (error instanceof StorageFullError) return [503, "storage_full", error.message];
  if (error instanceof StoreCorruptError) return [503, "storage_corrupt", error.message];
  const type = (error as { type?: unknown } | null)?.type;
  const known = typeof type === "string" ? BODY_ERRORS[type] : undefined;
  if (known) return known;
  // Other client errors from body parsing (a corrupt gzip body, say) carry their own 4xx.
  const status = (error as { status?: unknown } | null)?.status;
  if (typeof status === "number" && status >= 400 && status < 500)
    return [
      status,
      "invalid_body",
      error instanceof Error ? error.message : "invalid request body",
    ];
  return undefined;
}

/** The Retry-After header an error's answer carries, if any. */
export function retryAfterOf(error: unknown): string | undefined {
  return error instanceof StorageFullError ? String(error.retryAfterSeconds) : undefined;
}

/** The one place where errors become HTTP answers. Anything unexpected is a logged 500. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    if (error instanceof MethodNotAllowedError) res.setHeader("Allow", error.allow.join(", "));
    const retryAfter = retryAfterOf(error);
    if (retryAfter !== undefined) res.setHeader("Retry-After", retryAfter);
    const answer = clientErrorOf(error);
    if (answer) {
      sendError(res, ...answer);
      return;
    }
    logger.error("request failed", { method: req.method, path: req.path, error: String(error) });
    sendError(res, 500, "internal", "internal error");
  };
}
