// What load and demo share about their output streams.

/**
 * A reader that went away (`npm run load | head -1`, `make demo | head`): end quietly with
 * `code`, rather than with an unhandled 'error' event (EPIPE) and its stack trace. What the
 * process started goes with it: its own 'exit' handlers still run.
 */
export function exitQuietlyWhenOutputCloses(code = 1): void {
  for (const stream of [process.stdout, process.stderr])
    stream.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EPIPE") process.exit(code);
      throw error;
    });
}
