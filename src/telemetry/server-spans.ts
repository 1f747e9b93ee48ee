// SERVER spans for our own HTTP servers, over @opentelemetry/api alone (a no-op without the SDK).
//
// instrumentation-http's incoming side binds every request's and response's event emitters to
// the request's context and computes a dozen attributes before the sampler has spoken. Measured
// with the benchmark, that was nearly all of the tracing overhead (POST /like at 0.55 of the
// untraced node). Here a request gets one span and W3C parent extraction; only a sampled span
// gets attributes and becomes the active context of the listener, which carries it on through
// promises (every body on our ports is read by an async reader, never by emitter callbacks).
import {
  ROOT_CONTEXT,
  SpanKind,
  type Context,
  type Span,
  SpanStatusCode,
  context,
  propagation,
  trace,
} from "@opentelemetry/api";
import type { RequestListener } from "node:http";
import { admitRoot } from "./root-admission.js";

const tracer = trace.getTracer("likes-http");

export interface ServerSpanOptions {
  /** Paths that are polled, not served: no span, so they do not drown the traces that matter. */
  readonly untraced?: ReadonlySet<string>;
}

/** What a SERVER span is made from: the request's line, its trace headers and its socket. */
export interface ServerRequest {
  readonly method: string;
  readonly path: string;
  /** The request's headers; `traceparent`, `tracestate` and `baggage` are read. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly socket: { readonly localPort?: number; readonly remoteAddress?: string };
  readonly httpVersion: string;
}

/** A recording SERVER span and the context that carries it to the request's own work. */
export interface ServerSpan {
  readonly span: Span;
  readonly context: Context;
}

/**
 * Starts a request's SERVER span, child of the caller's `traceparent`; undefined when nothing
 * about the request would be recorded (the rate limit turned a new trace away, or the span is
 * not sampled), and then no context is carried either.
 */
export function startServerSpan(req: ServerRequest): ServerSpan | undefined {
  // A request that starts no trace (no caller's traceparent) and that the rate limit turns
  // away gets no span at all: nothing about it would be recorded.
  const root = req.headers.traceparent === undefined ? admitRoot(ROOT_CONTEXT) : ROOT_CONTEXT;
  if (root === undefined) return undefined;
  const parent = propagation.extract(root, req.headers);
  const span = tracer.startSpan(req.method, { kind: SpanKind.SERVER }, parent);
  // Not sampled: nothing under it would be either (every sampler we configure is parent-based),
  // and the likes' spans are only started under a recording span; so no context to carry.
  if (!span.isRecording()) return undefined;
  const agent = req.headers["user-agent"];
  span.setAttributes({
    "http.request.method": req.method,
    "url.scheme": "http",
    "url.path": req.path,
    "server.port": req.socket.localPort ?? 0,
    "client.address": req.socket.remoteAddress ?? "",
    "network.protocol.version": req.httpVersion,
    ...(typeof agent === "string" ? { "user_agent.original": agent } : {}),
  });
  return { span, context: trace.setSpan(parent, span) };
}

/** Names a SERVER span by its route, as `POST /like` (express itself is not instrumented). */
export function nameByRoute(span: Span | undefined, method: string, route: string): void {
  if (!span?.isRecording()) return;
  span.updateName(`${method} ${route}`);
  span.setAttribute("http.route", route);
}

/** Ends a SERVER span with the answer's status; `answered` is false when the client left first. */
export function endServerSpan(span: Span, status: number, answered: boolean): void {
  span.setAttribute("http.response.status_code", status);
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  else if (!answered)
    span.setStatus({ code: SpanStatusCode.ERROR, message: "connection closed early" });
  span.end();
}

/** Wraps a listener: one SERVER span per request, child of the caller's `traceparent`. */
export function withServerSpans(
  listener: RequestListener,
  options: ServerSpanOptions = {},
): RequestListener {
  return (req, res) => {
    const url = req.url ?? "/";
    const query = url.indexOf("?");
    const path = query === -1 ? url : url.slice(0, query);
    if (options.untraced?.has(path)) {
      listener(req, res);
      return;
    }
    const traced = startServerSpan({
      method: req.method ?? "GET",
      path,
      headers: req.headers,
      socket: req.socket,
      httpVersion: req.httpVersion,
    });
    if (traced === undefined) {
      listener(req, res);
      return;
    }
    res.once("close", () => endServerSpan(traced.span, res.statusCode, res.writableFinished));
    context.with(traced.context, () => listener(req, res));
  };
}
