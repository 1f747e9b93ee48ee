import { context, trace } from "@opentelemetry/api";
import winston from "winston";
import type { LogLevel } from "../config.js";
import type { LogFields, Logger } from "./types.js";

// Inside a span, every line names it, so a log line leads to its trace and back.
const traceIds = winston.format((info) => {
  const ctx = trace.getSpan(context.active())?.spanContext();
  if (ctx && trace.isSpanContextValid(ctx)) {
    info.trace_id = ctx.traceId;
    info.span_id = ctx.spanId;
  }
  return info;
});

/** JSON lines on stdout, one per event. */
export function createLogger(level: LogLevel, defaults: LogFields = {}): Logger {
  const log = winston.createLogger({
    level,
    defaultMeta: defaults,
    format: winston.format.combine(traceIds(), winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Console()],
  });
  return {
    error: (message, fields) => log.error(message, fields),
    warn: (message, fields) => log.warn(message, fields),
    info: (message, fields) => log.info(message, fields),
    debug: (message, fields) => log.debug(message, fields),
  };
}
