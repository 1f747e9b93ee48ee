import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const POST_SCRIPT = fileURLToPath(new URL("../../../bench/post.lua", import.meta.url));

export interface WrkResult {
  readonly rps: number;
  /** Requests completed (answered, whatever the status). */
  readonly requests: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
}

/** One wrk run against 127.0.0.1: `POST /like` with a new like per request, or a GET path. */
export async function wrk(
  port: number,
  {
    seconds,
    connections,
    post,
    path = "/",
    tag = "r",
  }: { seconds: number; connections: number; post: boolean; path?: string; tag?: string },
): Promise<WrkResult> {
  const args = [
    "-t1",
    `-c${connections}`,
    `-d${Math.max(1, Math.round(seconds))}s`,
    "--latency",
    "--timeout",
    "5s",
  ];
  if (post) args.push("-s", POST_SCRIPT);
  args.push(`http://127.0.0.1:${port}${post ? "" : path}`);
  if (post) args.push("--", tag);
  const { stdout } = await run("wrk", args, { timeout: (seconds + 30) * 1000 });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1]);
  const p50 = latency(/\s50%\s+([\d.]+)(us|ms|s)/.exec(stdout));
  const p99 = latency(/\s99%\s+([\d.]+)(us|ms|s)/.exec(stdout));
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(
    stdout,
  );
  const errors =
    non2xx + (socketErrors ? socketErrors.slice(1).reduce((n, x) => n + Number(x), 0) : 0);
  if (!Number.isFinite(rps) || !Number.isFinite(requests))
    throw new Error(`cannot read wrk output:\n${stdout}`);
  return { rps, requests, p50Ms: p50, p99Ms: p99, errors };
}

function latency(match: RegExpExecArray | null): number {
  if (!match) return NaN;
  const value = Number(match[1]);
  return match[2] === "us" ? value / 1000 : match[2] === "s" ? value * 1000 : value;
}
