// The one JSON responder of the HTTP edge: every JSON answer of the public and admin ports,
// success or error, is written here, so a rule about answers (headers, closing) lives once.
import { STATUS_CODES, type ServerResponse } from "node:http";
import type { LogFields, Logger } from "../telemetry/types.js";
import type { ErrorAnswer, HttpError } from "./errors.js";
import { errorAnswer } from "./errors.js";
import { hasBody } from "./body.js";

const JSON_TYPE = "application/json; charset=utf-8";
// Above the public port's 16 KiB limit: a client that sends a little more is still answered.
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

/** An error's answer (`errorAnswer`); an error it does not know is a bug, logged, a 500. */
export function answerError(error: unknown, logger: Logger, fields?: LogFields): ErrorAnswer {
  const answer = errorAnswer(error);
  if (answer.status === 500) logger.error("request failed", { ...fields, error: String(error) });
  return answer;
}

/** Answers an error through `answerError`. */
export function sendError(
  res: ServerResponse,
  error: unknown,
  logger: Logger,
  fields?: LogFields,
): void {
  const answer = answerError(error, logger, fields);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const name in answer.headers) res.setHeader(name, answer.headers[name] as string);
  // A large body refused before its end is not read to its end (a 10 MB upload, say):
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

/**
 * A JSON answer as raw HTTP/1.1, for a socket that has no response object (a CONNECT, or a
 * request read without node:http): `last` holds the header lines that end the head, the
 * Connection header among them (one that `headers` names is left out).
 */
export function rawJsonResponse(
  status: number,
  headers: Readonly<Record<string, string>> | undefined,
  text: string,
  last: string,
): string {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\n`;
  if (headers)
    for (const name in headers)
      if (name.toLowerCase() !== "connection") head += `${name}: ${headers[name]}\r\n`;
  head += `content-type: ${JSON_TYPE}\r\ncontent-length: ${Buffer.byteLength(text)}\r\n`;
  return `${head}${last}\r\n${text}`;
}

/** An error answer as raw HTTP/1.1 that closes the connection (a CONNECT's). */
export function rawErrorResponse(error: HttpError): string {
  const { status, headers, body } = errorAnswer(error);
  return rawJsonResponse(status, headers, JSON.stringify(body), "connection: close\r\n");
}

let dateSecond = -1;
let dateText = "";
/** The Date header's value, made once a second as node:http makes it. */
export function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}
