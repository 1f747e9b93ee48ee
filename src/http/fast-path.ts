// POST /like and GET /likes without express, for the requests almost every client sends.
//
// Express and its router were most of the CPU of a like (profiled with `node --cpu-prof` under
// the benchmark's load), and half of a read's. This path serves the plain cases only: a like at
// exactly `/like`, `Content-Type: application/json` (optionally `; charset=utf-8`), a
// Content-Length within the limit, no Content-Encoding, no chunking; a read of exactly `GET
// /likes`. Everything else goes to the express app. Both read the body, the query and the like,
// and answer, through the same functions (body.ts, validation.ts, respond.ts, and the app's
// own answers); test/unit/fast-path.test.ts checks that they answer alike.
import { context, trace } from "@opentelemetry/api";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { endServerSpan, nameByRoute, startServerSpan } from "../telemetry/server-spans.js";
import type { LogFields, Logger, Metrics } from "../telemetry/types.js";
import { decodeJson, readBody } from "./body.js";
import { replyOf, type PlainHandler, type PlainReply } from "./plain-reply.js";
import { PLAIN_JSON, type PlainRequest } from "./plain-request.js";
import { answerError, sendError, sendJson } from "./respond.js";
import { BODY_LIMIT_BYTES, parseQuery, type Query } from "./validation.js";

export interface Answer {
  readonly status: number;
  readonly body: unknown;
}

const LIKE_FIELDS = { method: "POST", path: "/like" } as const;
const READ_FIELDS = { method: "GET", path: "/likes" } as const;

/** Whether a request is the plain case this path serves, decided from its head alone. */
export function isPlainLike(req: IncomingMessage): boolean {
  if (req.method !== "POST" || !servesTarget(req.url, LIKE_FIELDS.path)) return false;
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

/** Whether a request is a read this path serves: `GET /likes` with any query. */
export function isPlainRead(req: IncomingMessage): boolean {
  return req.method === "GET" && servesTarget(req.url, READ_FIELDS.path);
}

/**
 * Whether a target is `path` with any query and no fragment: express cuts a fragment
 * (parseurl), so its route serves such a target.
 */
function servesTarget(url: string | undefined, path: string): boolean {
  return (
    url !== undefined &&
    url.startsWith(path) &&
    (url.length === path.length || url[path.length] === "?") &&
    !url.includes("#")
  );
}

/** The request's query, parsed as the express app parses it; its server span named by route. */
function routed(req: IncomingMessage, method: string, route: string): Query {
  nameByRoute(trace.getActiveSpan(), method, route);
  const url = req.url ?? "";
  const mark = url.indexOf("?");
  return parseQuery(mark === -1 ? undefined : url.slice(mark + 1));
}

/** Serves a request that `isPlainLike` accepted with what `accept` returns, or its error. */
export async function serveLike(
  req: IncomingMessage,
  res: ServerResponse,
  accept: (query: Query, body: unknown) => Promise<Answer>,
  logger: Logger,
): Promise<void> {
  try {
    const query = routed(req, "POST", "/like");
    const answer = await accept(query, decodeJson(await readBody(req, BODY_LIMIT_BYTES)));
    sendJson(res, answer.status, answer.body);
  } catch (error) {
    sendError(res, error, logger, LIKE_FIELDS);
  }
}

/** Serves a request that `isPlainRead` accepted with what `read` answers, or its error. */
export function serveRead(
  req: IncomingMessage,
  res: ServerResponse,
  read: (query: Query) => Answer,
  logger: Logger,
): void {
  try {
    const answer = read(routed(req, "GET", "/likes"));
    sendJson(res, answer.status, answer.body);
  } catch (error) {
    sendError(res, error, logger, READ_FIELDS);
  }
}

/** What a plain request is answered from: the app's own answers to a like and to a read. */
export interface PlainRoutes {
  readonly like: (query: Query, body: unknown) => Promise<Answer>;
  readonly read: (query: Query) => Answer;
  readonly logger: Logger;
  readonly metrics?: Pick<Metrics, "requestServed"> | undefined;
}

/**
 * The handler of the requests plain-request.ts reads off the socket: the same answers as
 * `serveLike` and `serveRead`, the same SERVER span (named by route) and the same metric.
 */
export function plainHandler(routes: PlainRoutes): PlainHandler {
  const { like, read, logger, metrics } = routes;
  return (request: PlainRequest, socket: Socket) => {
    const started = performance.now();
    const { method, route } = request;
    const traced = startServerSpan({
      method,
      path: route,
      headers: request.headers,
      socket,
      httpVersion: "1.1",
    });
    const done = (reply: PlainReply): PlainReply => {
      metrics?.requestServed(route, method, reply.status, (performance.now() - started) / 1000);
      if (traced) endServerSpan(traced.span, reply.status, !socket.destroyed);
      return reply;
    };
    const fields = method === "POST" ? LIKE_FIELDS : READ_FIELDS;
    nameByRoute(traced?.span, method, route);
    if (method === "GET") {
      const answer = () => {
        try {
          return replyOf(read(parseQuery(request.query)));
        } catch (error) {
          return errorReply(error, logger, fields);
        }
      };
      return done(traced ? context.with(traced.context, answer) : answer());
    }
    const answer = async () => {
      try {
        return replyOf(await like(parseQuery(request.query), decodeJson(request.body)));
      } catch (error) {
        return errorReply(error, logger, fields);
      }
    };
    return (traced ? context.with(traced.context, answer) : answer()).then(done);
  };
}

/** An error's answer, as `sendError` writes it. */
function errorReply(error: unknown, logger: Logger, fields: LogFields): PlainReply {
  return replyOf(answerError(error, logger, fields));
}
