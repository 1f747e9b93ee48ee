import winston from "winston";
import type { LogLevel } from "../config.js";
import type { LogFields, Logger } from "./types.js";

/** JSON lines on stdout, one per event. */
export function createLogger(level: LogLevel, defaults: LogFields = {}): Logger {
  const log = winston.createLogger({
    level,
    defaultMeta: defaults,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Console()],
  });
  return {
    error: (message, fields) => log.error(message, fields),
    warn: (message, fields) => log.warn(message, fields),
    info: (message, fields) => log.info(message, fields),
    debug: (message, fields) => log.debug(message, fields),
  };
}
