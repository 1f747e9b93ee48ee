// The one JSON responder of the HTTP edge: every JSON answer of the public, peer and admin ports,
// success or error, is written here, so a rule about answers (headers, closing) lives once.
import { STATUS_CODES, type ServerResponse } from "node:http";
import type { LogFields, Logger } from "../telemetry/types.js";
import type { HttpError } from "./errors.js";
import { errorAnswer } from "./errors.js";
import { hasBody } from "./body.js";

const JSON_TYPE = "application/json; charset=utf-8";
// Above the public port's 16 KiB limit, far below the peer port's 16 MiB.
const DRAIN_LIMIT_BYTES = 64 * 1024;

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": JSON_TYPE, "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** A metrics exposition, rendered for the scraper's Accept header. */
export type MetricsRenderer = (
  accept: string | undefined,
) => Promise<{ contentType: string; body: string }>;

/** Answers a scrape with the exposition `render` makes, or its error. */
export function sendMetrics(
  res: ServerResponse,
  render: MetricsRenderer,
  logger: Logger,
  fields?: LogFields,
): void {
  render(res.req.headers.accept).then(
    ({ contentType, body }) => {
      res.writeHead(200, {
        "content-type": contentType,
        "content-length": Buffer.byteLength(body),
      });
      res.end(body);
    },
    (error: unknown) => sendError(res, error, logger, fields),
  );
}

/** Answers an error through `errorAnswer`; an error it does not know is a bug, logged, a 500. */
export function sendError(
  res: ServerResponse,
  error: unknown,
  logger: Logger,
  fields?: LogFields,
): void {
  const answer = errorAnswer(error);
  if (answer.status === 500) logger.error("request failed", { ...fields, error: String(error) });
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const name in answer.headers) res.setHeader(name, answer.headers[name] as string);
  // A large body refused before its end is not read to its end (an unsigned 16 MiB push, say):
  // the connection closes after the answer. A small one is left to node:http, which reads and
  // drops it, so that a client still sending reads this answer rather than a reset.
  if (!res.req.complete && hasBody(res.req) && !(declaredLength(res) <= DRAIN_LIMIT_BYTES))
    res.setHeader("connection", "close");
  sendJson(res, answer.status, answer.body);
}

/** The request's declared body length; NaN when chunked, which is never drained. */
function declaredLength(res: ServerResponse): number {
  const length = res.req.headers["content-length"];
  return length === undefined ? NaN : Number(length);
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
