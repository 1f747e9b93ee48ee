// The one JSON responder of the HTTP edge: every JSON answer of the public, peer and admin ports,
// success or error, is written here, so a rule about answers (headers, closing) lives once.
import { STATUS_CODES, type ServerResponse } from "node:http";
import type { LogFields, Logger } from "../telemetry/types.js";
import { HttpError, errorAnswer } from "./errors.js";
import { hasBody } from "./body.js";

const JSON_TYPE = "application/json; charset=utf-8";

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": JSON_TYPE, "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** Answers an error through `errorAnswer`; anything not an HttpError is a bug, logged, a 500. */
export function sendError(
  res: ServerResponse,
  error: unknown,
  logger: Logger,
  fields?: LogFields,
): void {
  if (!(error instanceof HttpError))
    logger.error("request failed", { ...fields, error: String(error) });
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const answer = errorAnswer(error);
  for (const name in answer.headers) res.setHeader(name, answer.headers[name] as string);
  // A body refused before its end is not read to its end (an unsigned 16 MiB push, say): the
  // connection closes after the answer instead.
  if (!res.req.complete && hasBody(res.req)) res.setHeader("connection", "close");
  sendJson(res, answer.status, answer.body);
}

/** An error answer as raw HTTP/1.1, for a socket that has no response object (CONNECT). */
export function rawErrorResponse(error: HttpError): string {
  const { status, headers, body } = errorAnswer(error);
  const text = JSON.stringify(body);
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}`];
  for (const name in headers) lines.push(`${name}: ${headers[name]}`);
  lines.push(
    `content-type: ${JSON_TYPE}`,
    `content-length: ${Buffer.byteLength(text)}`,
    "connection: close",
  );
  return `${lines.join("\r\n")}\r\n\r\n${text}`;
}
