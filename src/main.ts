// Process entry. Tracing must start before anything it instruments (http) is loaded, so this
// file imports the node lazily: configuration first, then tracing, then the node.
import { readFileSync } from "node:fs";
import { ConfigError, loadConfig, type Config } from "./config.js";
// A type only (erased): the node itself is imported once tracing runs.
import type { LikesNode as RunningNode } from "./node.js";
import {
  DataDirectoryError,
  DataDirectoryLockedError,
  StorageFullError,
  StoreCorruptError,
} from "./store/types.js";

const SHUTDOWN_DEADLINE_MS = 5000;
// The exporter retries an unreachable collector for longer than a pod's grace period.
const FLUSH_DEADLINE_MS = 1000;
// What the node gets to answer, commit and close: the rest of the deadline goes to the span
// flush, with half a second for the store's close and the exit.
const STOP_DEADLINE_MS = SHUTDOWN_DEADLINE_MS - FLUSH_DEADLINE_MS - 500;
/** Exit codes an operator acts on: 2, a setting or the data directory refused; 3, the store lost. */
const EXIT_REFUSED = 2;
const EXIT_STORE_LOST = 3;
const REFUSALS = [
  DataDirectoryLockedError,
  DataDirectoryError,
  StoreCorruptError,
  StorageFullError,
];

function readConfig(): Config {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`likes: invalid configuration: ${error.message}`);
      process.exit(EXIT_REFUSED);
    }
    throw error;
  }
}

async function main(): Promise<void> {
  const config = readConfig();
  // With tracing off, the SDK and its instrumentations are not even loaded (startup, memory).
  // The SDK reads these itself: metrics are prom-client's and logs go to stdout, so it
  // exports traces only unless the operator says otherwise.
  process.env.OTEL_METRICS_EXPORTER ??= "none";
  process.env.OTEL_LOGS_EXPORTER ??= "none";
  const tracing = config.tracingDisabled
    ? { shutdown: () => Promise.resolve() }
    : (await import("./telemetry/tracing.js")).startTracing({
        nodeName: config.nodeName,
        version: packageVersion(),
        tracesPerSecond: config.tracesPerSecond,
        samplerFromEnv: config.samplerFromEnv,
        kubernetes: config.kubernetes,
      });
  const { createLogger } = await import("./telemetry/logger.js");
  const { LikesNode, StoppedWhileStartingError } = await import("./node.js");
  const logger = createLogger(config.logLevel, { node: config.nodeName });
  let node: RunningNode | undefined;
  let stopping = false;
  // Whatever happens, the process is gone within the deadline of its last stop told.
  let deadline: NodeJS.Timeout | undefined;
  const exitWithinDeadline = () => {
    clearTimeout(deadline);
    deadline = setTimeout(() => process.exit(1), SHUTDOWN_DEADLINE_MS).unref();
  };

  // Spans of the last requests are flushed before the process goes. An unreachable collector
  // loses those spans, not the clean exit: the likes are committed by then.
  const flushSpans = () =>
    Promise.race([
      tracing.shutdown(),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error("timed out")), FLUSH_DEADLINE_MS).unref(),
      ),
    ]).catch((error: unknown) => {
      logger.warn("could not flush the last spans", { error: String(error) });
    });

  function shutdown(signal: string, code = 0) {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down", { signal });
    // A stop told while starting gets the whole deadline from here, as the node's stop needs it.
    exitWithinDeadline();
    (node?.stop(STOP_DEADLINE_MS) ?? Promise.resolve()).then(flushSpans).then(
      () => process.exit(code),
      (error: unknown) => {
        logger.error("shutdown failed", { error: String(error) });
        process.exit(1);
      },
    );
  }

  // A signal during the bootstrap abandons the start (a snapshot being read is removed, the
  // ports close); one while the store opens stops the node once it runs; one after stops it.
  // The abort's reason is the signal.
  const startAborted = new AbortController();
  const onSignal = (signal: string) => {
    if (node) return shutdown(signal);
    if (startAborted.signal.aborted) return;
    logger.info("shutting down while starting", { signal });
    exitWithinDeadline();
    startAborted.abort(signal);
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));

  try {
    // With LIKES_ON_CORRUPTION=refill a corrupt store ends the process; the next start moves
    // the database aside (README, "Data directories").
    node = await LikesNode.start(
      config,
      logger,
      () => shutdown("corrupt store", EXIT_STORE_LOST),
      startAborted.signal,
    );
  } catch (error) {
    if (!(error instanceof StoppedWhileStartingError)) throw error;
    await flushSpans();
    process.exit(0);
  }
  // Told to stop after the store opened, before the node said it runs: it stops now.
  if (startAborted.signal.aborted) shutdown(String(startAborted.signal.reason));
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version?: string;
  };
  return pkg.version ?? "unknown";
}

main().catch((error: unknown) => {
  console.error(
    `likes: failed to start: ${error instanceof Error ? error.message : String(error)}`,
  );
  process.exit(REFUSALS.some((refusal) => error instanceof refusal) ? EXIT_REFUSED : 1);
});
