// The Logger port over winston: JSON lines with the trace and span ids of the active span.
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
  // The level is fixed at start: a disabled level costs one call to a no-op on hot paths.
  const at = (enabled: boolean, write: (message: string, fields?: LogFields) => unknown) =>
    enabled ? (message: string, fields?: LogFields) => void write(message, fields) : () => {};
  return {
    error: at(log.isErrorEnabled(), (m, f) => log.error(m, f)),
    warn: at(log.isWarnEnabled(), (m, f) => log.warn(m, f)),
    info: at(log.isInfoEnabled(), (m, f) => log.info(m, f)),
    debug: at(log.isDebugEnabled(), (m, f) => log.debug(m, f)),
  };
}
