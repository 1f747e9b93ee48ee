// The public port (README, "HTTP API"): the express app of every route, and in front of it the
// express-free path for plain POST /like and GET /likes (fast-path.ts). The listener this
// returns decides which of the two serves a request; both answer through respond.ts, read
// through body.ts and take their answers from the same functions here.
import { trace } from "@opentelemetry/api";
import express, {
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
} from "express";
import type { RequestListener } from "node:http";
import type { Like, NodeName, OriginId, PostId, UserId } from "../crdt/index.js";
import type { Consistency, WriteOutcome } from "../replication/replicator.js";
import type { Store } from "../store/index.js";
import { nameByRoute } from "../telemetry/server-spans.js";
import type { Logger, Metrics } from "../telemetry/types.js";
import { decodeJson, hasBody, isUtf8Charset, readBody } from "./body.js";
import {
  InvalidInputError,
  MethodNotAllowedError,
  NotFoundError,
  NotReadyError,
  UnsupportedMediaTypeError,
} from "./errors.js";
import {
  isPlainLike,
  isPlainRead,
  plainHandler,
  serveLike,
  serveRead,
  type Answer,
} from "./fast-path.js";
import type { PlainHandler } from "./plain-reply.js";
import { sendError, sendJson } from "./respond.js";
import {
  BODY_LIMIT_BYTES,
  booleanParam,
  consistencyParam,
  decodeCursor,
  encodeCursor,
  onlyKnown,
  pageLimit,
  parseLikeBody,
  parseQuery,
  postList,
  queryField,
  requiredPost,
  type Query,
} from "./validation.js";

export interface PublicAppDeps {
  readonly nodeName: NodeName;
  readonly origin: OriginId;
  /** Reads of committed state. */
  readonly store: Pick<Store, "count" | "liked" | "users">;
  /** Accepts a like and waits for the consistency asked for, or the write timeout. */
  readonly write: (like: Like, consistency: Consistency) => Promise<WriteOutcome>;
  readonly peerCount: () => number;
  /** Why the node is not ready to serve, or undefined when it is. */
  readonly notReady: () => string | undefined;
  readonly logger: Logger;
  /** Told of every answered request. */
  readonly metrics?: Pick<Metrics, "requestServed">;
}

export interface PublicAppOptions {
  /** Serve plain `POST /like` and `GET /likes` without express (fast-path.ts); on unless tests compare. */
  readonly fastPaths?: boolean;
}

export interface PublicApp {
  /** node:http's listener: every route. */
  readonly listener: RequestListener;
  /** The same answers to the plain requests read without node:http (plain-request.ts). */
  readonly plain: PlainHandler;
}

/** The public API (README, "HTTP API"): the seed's heartbeat, likes, counts and probes. */
export function createPublicApp(
  deps: PublicAppDeps,
  options: PublicAppOptions = { fastPaths: true },
): PublicApp {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.set("query parser", parseQuery);
  const observe = deps.metrics && deps.metrics.requestServed.bind(deps.metrics);
  if (observe)
    app.use((req, res, next) => {
      const started = performance.now();
      res.on("finish", () => {
        const route = (req.route as { path?: string } | undefined)?.path ?? "unmatched";
        observe(route, req.method, res.statusCode, (performance.now() - started) / 1000);
      });
      next();
    });
  const allowed: Record<string, string[]> = {};
  const route = (method: "get" | "post", path: string, ...handlers: RequestHandler[]) => {
    (allowed[path] ??= []).push(method.toUpperCase());
    app[method](path, nameSpan(path), ...handlers);
  };

  route("get", "/", (req, res) => {
    onlyKnown(req.query, []);
    sendJson(res, 200, {
      node: deps.nodeName,
      origin: deps.origin,
      peers: deps.peerCount(),
      status: "ok",
    });
  });

  const acceptLike = async (query: Query, json: unknown): Promise<Answer> => {
    onlyKnown(query, ["consistency"]);
    const consistency = consistencyParam(query);
    const like = parseLikeBody(json);
    const outcome = await deps.write(like, consistency);
    const body = { post: like.post, user: like.user, new: outcome.isNew, node: deps.nodeName };
    if (outcome.acks < outcome.required)
      return { status: 202, body: { ...body, acks: outcome.acks, required: outcome.required } };
    return { status: outcome.isNew ? 201 : 200, body };
  };

  route("post", "/like", readJsonBody, async (req, res) => {
    const answer = await acceptLike(req.query, req.body);
    sendJson(res, answer.status, answer.body);
  });

  const readLikes = (query: Query): Answer => {
    onlyKnown(query, ["post", "detail", "limit", "cursor", "user"]);
    const post = requiredPost(query);
    const user = queryField(query, "user") as UserId | undefined;
    const detail = booleanParam(query, "detail");
    const body: Record<string, unknown> = { post, likes: deps.store.count(post) };
    if (user !== undefined) body.liked = deps.store.liked(post, user);
    if (detail) {
      const limit = pageLimit(query);
      const page = deps.store.users(post, decodeCursor(query), limit + 1);
      const users = page.slice(0, limit);
      const last = users.at(-1);
      body.users = users;
      body.next = page.length > limit && last !== undefined ? encodeCursor(last) : null;
    } else if (query.limit !== undefined || query.cursor !== undefined) {
      pageLimit(query);
      decodeCursor(query);
    }
    return { status: 200, body };
  };

  route("get", "/likes", (req, res) => {
    const answer = readLikes(req.query);
    sendJson(res, answer.status, answer.body);
  });

  route("get", "/counts", (req, res) => {
    onlyKnown(req.query, ["post"]);
    const posts = postList(req.query);
    sendJson(res, 200, {
      counts: Object.fromEntries(posts.map((post: PostId) => [post, deps.store.count(post)])),
    });
  });

  route("get", "/healthz", (req, res) => {
    onlyKnown(req.query, []);
    sendJson(res, 200, { status: "ok" });
  });

  route("get", "/readyz", (req, res) => {
    onlyKnown(req.query, []);
    const reason = deps.notReady();
    if (reason !== undefined) throw new NotReadyError(reason);
    sendJson(res, 200, { status: "ready" });
  });

  for (const [path, methods] of Object.entries(allowed)) {
    const allow = methods.includes("GET") ? [...methods, "HEAD"] : methods;
    app.all(path, (req) => {
      throw new MethodNotAllowedError(req.method, allow);
    });
  }
  app.use((req) => {
    throw new NotFoundError(`no such resource: ${req.path}`);
  });
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    sendError(res, error, deps.logger, { method: req.method, path: req.path });
  });
  const plain = plainHandler({
    like: acceptLike,
    read: readLikes,
    logger: deps.logger,
    metrics: deps.metrics,
  });
  if (!options.fastPaths) return { listener: app, plain };
  const listener: RequestListener = (req, res) => {
    if (isPlainRead(req)) {
      const started = performance.now();
      serveRead(req, res, readLikes, deps.logger);
      observe?.("/likes", "GET", res.statusCode, (performance.now() - started) / 1000);
      return;
    }
    if (!isPlainLike(req)) {
      app(req, res);
      return;
    }
    const started = performance.now();
    serveLike(req, res, acceptLike, deps.logger).then(
      () => observe?.("/like", "POST", res.statusCode, (performance.now() - started) / 1000),
      // serveLike answers every error itself; this is only reached if answering one threw.
      (error: unknown) => {
        deps.logger.error("request failed", {
          method: "POST",
          path: "/like",
          error: String(error),
        });
        res.destroy();
      },
    );
  };
  return { listener, plain };
}

/** Names the HTTP server span by its route, as `POST /like`. */
function nameSpan(path: string): RequestHandler {
  return (req, _res, next) => {
    nameByRoute(trace.getActiveSpan(), req.method, path);
    next();
  };
}

/** The JSON body of POST /like, for the requests the fast path leaves to express. */
async function readJsonBody(req: Request, _res: Response, next: NextFunction): Promise<void> {
  if (!hasBody(req))
    throw new InvalidInputError("invalid_body", 'a JSON body {"post": …, "user": …} is required');
  if (!req.is(["application/json", "application/*+json"]))
    throw new UnsupportedMediaTypeError("the body must be JSON (Content-Type: application/json)");
  if (!isUtf8Charset(req.headers["content-type"]))
    throw new UnsupportedMediaTypeError("the body must be UTF-8 JSON");
  req.body = decodeJson(await readBody(req, BODY_LIMIT_BYTES, true));
  next();
}
