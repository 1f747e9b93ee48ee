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
    // A request that starts no trace (no caller's traceparent) and that the rate limit turns
    // away gets no span at all: nothing about it would be recorded.
    const root = req.headers.traceparent === undefined ? admitRoot(ROOT_CONTEXT) : ROOT_CONTEXT;
    if (root === undefined) {
      listener(req, res);
      return;
    }
    const method = req.method ?? "GET";
    const parent = propagation.extract(root, req.headers);
    const span = tracer.startSpan(method, { kind: SpanKind.SERVER }, parent);
    // Not sampled: nothing under it would be either (every sampler we configure is parent-based),
    // and the likes' spans are only started under a recording span; so no context to carry.
    if (!span.isRecording()) {
      listener(req, res);
      return;
    }
    span.setAttributes({
      "http.request.method": method,
      "url.scheme": "http",
      "url.path": path,
      "server.port": req.socket.localPort ?? 0,
      "client.address": req.socket.remoteAddress ?? "",
      "network.protocol.version": req.httpVersion,
      ...(req.headers["user-agent"] === undefined
        ? {}
        : { "user_agent.original": req.headers["user-agent"] }),
    });
    res.once("close", () => {
      span.setAttribute("http.response.status_code", res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      else if (!res.writableFinished)
        span.setStatus({ code: SpanStatusCode.ERROR, message: "connection closed early" });
      span.end();
    });
    const active = trace.setSpan(parent, span);
    context.with(active, () => listener(req, res));
  };
}
