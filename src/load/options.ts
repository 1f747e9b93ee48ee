// The command line of the load generator: defaults, parsing and validation into a frozen
// object. A bad value is a UsageError naming the option (exit 2), never a silent default.
import { parseArgs } from "node:util";

/** The `make dev` cluster's convention (scripts/cluster.js): node i serves on 8079 + i. */
export const DEV_FIRST_PORT = 8080;

export interface LoadOptions {
  readonly urls: readonly string[];
  readonly rate: number;
  /** undefined: until Ctrl-C. */
  readonly durationMs: number | undefined;
  readonly posts: number;
  readonly zipfExponent: number;
  readonly users: number;
  readonly readShare: number;
  readonly concurrency: number;
  readonly timeoutMs: number;
  readonly probeTimeoutMs: number;
  readonly seed: number | undefined;
  /** undefined: 1 s on a terminal, 5 s otherwise; 0: no progress lines. */
  readonly progressMs: number | undefined;
  readonly json: boolean;
  readonly help: boolean;
}

export class UsageError extends Error {
  override readonly name = "UsageError";
}

export const HELP = `Usage: npm run load -- [options]     (or: make load RATE=500 DURATION=30s, or node dist/load/main.js)

Open-loop load on a likes cluster: requests are sent at --rate a second by the clock, whatever
the answers; when --concurrency requests are in flight, the sends that fall due are dropped and
counted as "dropped (client saturated)". Likes go to posts drawn from a Zipf distribution
(post-1 the hottest) by users drawn from a pool, so repeats (200, new:false) happen; a share of
requests are reads. Stops after --duration or on Ctrl-C, then waits for the answers in flight
(Ctrl-C once sending has stopped: stop waiting; those requests count as "unanswered"), then
prints a summary. Numbers are decimal (20, 0.5).

Options (default in brackets):
  --url <url>            base URL of a node or Service; repeat or comma-separate for several,
                         used in turn [the make dev nodes, see --nodes]
  --nodes <n>            without --url: the first n nodes of make dev, http://127.0.0.1:8080,
                         :8081, … [3]
  --rate <n>             requests a second, likes and reads together [100]
  --duration <d>         how long to send, e.g. 500ms, 30s, 2m, 1h; at most 24h; 0 = until
                         Ctrl-C [30s]
  --posts <n>            number of posts, post-1 … post-n [1000]
  --zipf <s>             Zipf exponent of the post popularity; 0 = uniform [1.1]
  --users <n>            size of the user pool, user-1 … user-n [10000]
  --reads <share>        share of requests that are reads, 0 to 1, split evenly over
                         GET /likes, /likes?detail=true, /likes?user=, /counts (10 posts) [0.2]
  --concurrency <n>      most requests in flight at once [256]
  --timeout <d>          a request without an answer by then is an error "timeout"; also how
                         long the end of a run waits for answers in flight; at most 1h [5s]
  --probe-timeout <d>    how long GET / on each URL may take at start; at most 1h [2s]
  --seed <n>             seed of the random choices, to replay a run [random, printed]
  --progress <d>         progress line every <d>, 100ms to 1h; 0 = none
                         [1s on a terminal, else 5s]
  --json                 print the summary as JSON on stdout; progress goes to stderr
  -h, --help             this text

Exit status: 0 the run completed (or was stopped), 1 no node answered GET / at start (or the
reader of its output went away: \`| head\`), 2 bad options, 3 every request sent ended in an
error (none was answered).
`;

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Node's timers hold at most 2^31-1 ms (24.8 days); past it a timer fires after 1 ms. */
const TIMER_MAX_MS = 2 ** 31 - 1;
export const HOUR_MS = 3_600_000;
/** The longest --duration: a longer run is `--duration 0` (until Ctrl-C). */
export const MAX_RUN_MS = 24 * HOUR_MS;
/** The longest --timeout and --probe-timeout, and --progress interval. */
export const MAX_WAIT_MS = HOUR_MS;
/** The shortest --progress interval other than 0 (off): more often floods the output. */
export const MIN_PROGRESS_MS = 100;

/** 3600000 → "1h", 100 → "100ms": a bound as the messages name it. */
function durationText(ms: number): string {
  if (ms % HOUR_MS === 0) return `${ms / HOUR_MS}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/**
 * "30s" → 30000; "0" → 0. At most `max` ms (never more than a timer holds): a UsageError naming
 * the option otherwise.
 */
export function parseDuration(option: string, text: string, max = MAX_RUN_MS): number {
  if (text === "0") return 0;
  const m = DURATION.exec(text.trim());
  if (!m)
    throw new UsageError(`--${option}: "${text}" is not a duration (like 500ms, 30s, 2m, 1h)`);
  const ms = Number(m[1]) * (UNIT_MS[m[2] ?? "s"] ?? 1000);
  const bound = Math.min(max, TIMER_MAX_MS);
  if (ms > bound) throw new UsageError(`--${option}: ${text} is more than ${durationText(bound)}`);
  return ms;
}

/** Decimal digits, a sign and a point: not 0x14, 1e3 or Infinity, which Number() reads too. */
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)$/;

/** A number option within bounds; a UsageError naming the option otherwise. */
export function numberOption(
  option: string,
  text: string,
  { min, max, integer = false }: { min: number; max: number; integer?: boolean },
): number {
  const value = Number(text);
  const kind = integer ? "an integer" : "a number";
  if (!DECIMAL.test(text.trim()) || (integer && !Number.isInteger(value)))
    throw new UsageError(`--${option}: "${text}" is not ${kind}`);
  if (value < min || value > max)
    throw new UsageError(`--${option}: ${text} is out of range: ${kind} from ${min} to ${max}`);
  return value;
}

/** A base URL (no query, no trailing slash); a UsageError naming the option otherwise. */
export function baseUrl(text: string, option = "url"): string {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new UsageError(`--${option}: "${text}" is not a URL (like http://127.0.0.1:8080)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new UsageError(`--${option}: "${text}" is not an http:// or https:// URL`);
  if (url.search || url.hash)
    throw new UsageError(`--${option}: "${text}" has a query or fragment`);
  return url.href.replace(/\/+$/, "");
}

/**
 * The base URLs of a repeatable, comma-separated option; [] when the option is absent. Given
 * but empty (`--url ""`) is a UsageError: it never falls back to the default nodes.
 */
export function urlList(values: readonly string[] | undefined, option: string): string[] {
  if (values === undefined) return [];
  const urls = values
    .flatMap((u) => u.split(","))
    .filter((u) => u.trim() !== "")
    .map((u) => baseUrl(u, option));
  if (urls.length === 0) throw new UsageError(`--${option}: no URL given`);
  return urls;
}

export function parseOptions(argv: readonly string[]): LoadOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: "string", multiple: true },
        nodes: { type: "string", default: "3" },
        rate: { type: "string", default: "100" },
        duration: { type: "string", default: "30s" },
        posts: { type: "string", default: "1000" },
        zipf: { type: "string", default: "1.1" },
        users: { type: "string", default: "10000" },
        reads: { type: "string", default: "0.2" },
        concurrency: { type: "string", default: "256" },
        timeout: { type: "string", default: "5s" },
        "probe-timeout": { type: "string", default: "2s" },
        seed: { type: "string" },
        progress: { type: "string" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const nodes = numberOption("nodes", values.nodes, { min: 1, max: 20, integer: true });
  const given = urlList(values.url, "url");
  const urls = given.length
    ? given
    : Array.from({ length: nodes }, (_, i) => `http://127.0.0.1:${DEV_FIRST_PORT + i}`);
  const durationMs = parseDuration("duration", values.duration, MAX_RUN_MS);
  const timeoutMs = parseDuration("timeout", values.timeout, MAX_WAIT_MS);
  if (timeoutMs <= 0) throw new UsageError("--timeout: must be more than 0");
  const probeTimeoutMs = parseDuration("probe-timeout", values["probe-timeout"], MAX_WAIT_MS);
  if (probeTimeoutMs <= 0) throw new UsageError("--probe-timeout: must be more than 0");
  const progressMs =
    values.progress === undefined
      ? undefined
      : parseDuration("progress", values.progress, MAX_WAIT_MS);
  if (progressMs !== undefined && progressMs > 0 && progressMs < MIN_PROGRESS_MS)
    throw new UsageError(
      `--progress: ${values.progress} is less than ${MIN_PROGRESS_MS}ms (0 turns the progress lines off)`,
    );
  return Object.freeze({
    urls: Object.freeze(urls),
    rate: numberOption("rate", values.rate, { min: 0.1, max: 100_000 }),
    durationMs: durationMs === 0 ? undefined : durationMs,
    posts: numberOption("posts", values.posts, { min: 1, max: 1_000_000, integer: true }),
    zipfExponent: numberOption("zipf", values.zipf, { min: 0, max: 10 }),
    users: numberOption("users", values.users, { min: 1, max: 100_000_000, integer: true }),
    readShare: numberOption("reads", values.reads, { min: 0, max: 1 }),
    concurrency: numberOption("concurrency", values.concurrency, {
      min: 1,
      max: 10_000,
      integer: true,
    }),
    timeoutMs,
    probeTimeoutMs,
    seed:
      values.seed === undefined
        ? undefined
        : numberOption("seed", values.seed, { min: 0, max: 2 ** 32 - 1, integer: true }),
    progressMs,
    json: values.json,
    help: values.help,
  });
}
