// POST /like without express, for the requests almost every client sends.
//
// Express and its router were most of the CPU of a like (profiled with `node --cpu-prof` under
// the benchmark's load). This path serves the plain case only: exactly `/like`,
// `Content-Type: application/json` (optionally `; charset=utf-8`), a Content-Length within the
// limit, no Content-Encoding, no chunking. Everything else goes to the express app. Both read
// the body, the query and the like, and answer, through the same functions (body.ts,
// validation.ts, respond.ts); test/unit/fast-like.test.ts checks that they answer alike.
import { trace } from "@opentelemetry/api";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "../telemetry/types.js";
import { decodeJson, readBody } from "./body.js";
import { sendError, sendJson } from "./respond.js";
import { BODY_LIMIT_BYTES, parseQuery, type Query } from "./validation.js";

export interface Answer {
  readonly status: number;
  readonly body: unknown;
}

const PLAIN_JSON = new Set([
  "application/json",
  "application/json; charset=utf-8",
  "application/json;charset=utf-8",
]);
const LOG_FIELDS = { method: "POST", path: "/like" } as const;

/** Whether a request is the plain case this path serves, decided from its head alone. */
export function isPlainLike(req: IncomingMessage): boolean {
  const url = req.url;
  if (req.method !== "POST" || url === undefined) return false;
  if (url !== "/like" && !url.startsWith("/like?")) return false;
  const headers = req.headers;
  if (headers["transfer-encoding"] !== undefined || headers["content-encoding"] !== undefined)
    return false;
  const type = headers["content-type"];
  if (type === undefined || !PLAIN_JSON.has(type.toLowerCase())) return false;
  const length = headers["content-length"];
  return (
    length !== undefined && /^[1-9]\d{0,5}$/.test(length) && Number(length) <= BODY_LIMIT_BYTES
  );
}

/** Serves a request that `isPlainLike` accepted with what `accept` returns, or its error. */
export async function serveLike(
  req: IncomingMessage,
  res: ServerResponse,
  accept: (query: Query, body: unknown) => Promise<Answer>,
  logger: Logger,
): Promise<void> {
  try {
    const url = req.url ?? "";
    const mark = url.indexOf("?");
    const query = parseQuery(mark === -1 ? undefined : url.slice(mark + 1));
    const span = trace.getActiveSpan();
    if (span?.isRecording()) {
      span.updateName("POST /like");
      span.setAttribute("http.route", "/like");
    }
    const answer = await accept(query, decodeJson(await readBody(req, BODY_LIMIT_BYTES)));
    sendJson(res, answer.status, answer.body);
  } catch (error) {
    sendError(res, error, logger, LOG_FIELDS);
  }
}
