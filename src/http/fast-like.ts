// POST /like without express, for the requests almost every client sends.
//
// Express, its router and body-parser were most of the CPU of a like (profiled with
// `node --cpu-prof` under the benchmark's load). This path serves the plain case only: exactly
// `/like`, `Content-Type: application/json` (optionally `; charset=utf-8`), a Content-Length
// within the limit, no Content-Encoding, no chunking. Everything else goes to the express app,
// which serves it as before; test/unit/fast-like.test.ts checks that both answer alike.
import { trace } from "@opentelemetry/api";
import type { IncomingMessage, ServerResponse } from "node:http";
import { parse as parseQuery } from "node:querystring";
import type { Logger } from "../telemetry/types.js";
import { InvalidInputError, clientErrorOf, retryAfterOf } from "./errors.js";
import type { Query } from "./validation.js";

export interface Answer {
  readonly status: number;
  readonly body: unknown;
  readonly retryAfter?: string;
}

const PLAIN_JSON = new Set([
  "application/json",
  "application/json; charset=utf-8",
  "application/json;charset=utf-8",
]);

/** Whether a request is the plain case this path serves, decided from its head alone. */
export function isPlainLike(req: IncomingMessage, limit: number): boolean {
  const url = req.url;
  if (req.method !== "POST" || url === undefined) return false;
  if (url !== "/like" && !url.startsWith("/like?")) return false;
  const headers = req.headers;
  if (headers["transfer-encoding"] !== undefined || headers["content-encoding"] !== undefined)
    return false;
  const type = headers["content-type"];
  if (type === undefined || !PLAIN_JSON.has(type.toLowerCase())) return false;
  const length = headers["content-length"];
  return length !== undefined && /^[1-9]\d{0,5}$/.test(length) && Number(length) <= limit;
}

/**
 * Serves a request that `isPlainLike` accepted: reads the body, parses it as body-parser's
 * strict JSON would, and answers with what `accept` returns, or with the error it throws.
 */
export async function serveLike(
  req: IncomingMessage,
  res: ServerResponse,
  accept: (query: Query, body: unknown) => Promise<Answer>,
  logger: Logger,
): Promise<void> {
  let answer: Answer;
  try {
    const url = req.url ?? "";
    const mark = url.indexOf("?");
    const query = mark === -1 ? {} : parseQuery(url.slice(mark + 1));
    const span = trace.getActiveSpan();
    if (span?.isRecording()) {
      span.updateName("POST /like");
      span.setAttribute("http.route", "/like");
    }
    answer = await accept(
      query,
      parseJson(await readBody(req, Number(req.headers["content-length"]))),
    );
  } catch (error) {
    const known = clientErrorOf(error);
    if (!known)
      logger.error("request failed", { method: "POST", path: "/like", error: String(error) });
    const [status, code, message] = known ?? [500, "internal", "internal error"];
    answer = { status, body: { error: { code, message } }, retryAfter: retryAfterOf(error) };
  }
  const text = JSON.stringify(answer.body);
  res.writeHead(answer.status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    ...(answer.retryAfter !== undefined && { "retry-after": answer.retryAfter }),
  });
  res.end(text);
}

function readBody(req: IncomingMessage, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (size !== length)
        reject(new InvalidInputError("invalid_body", "the body does not match its Content-Length"));
      else resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    });
    req.on("error", () =>
      reject(new InvalidInputError("request_aborted", "the request was aborted")),
    );
  });
}

/** As body-parser's `json({ strict: true })`: UTF-8, a leading BOM dropped, an object or array. */
function parseJson(bytes: Buffer): unknown {
  let text = bytes.toString("utf8");
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const first = /^[ \t\n\r]*(.)/s.exec(text)?.[1];
  if (first === "{" || first === "[") {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // Answered below, as any other invalid JSON.
    }
  }
  throw new InvalidInputError("invalid_json", "the body is not valid JSON");
}
