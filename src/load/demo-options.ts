// The command line of the guided scenario (make demo): the phases' durations, the node to cut
// off, where the cluster is, and the load's shape. Bad input is a UsageError naming the option.
import { parseArgs } from "node:util";
import {
  DEV_FIRST_PORT,
  UsageError,
  baseUrl,
  numberOption,
  parseDuration,
  urlList,
} from "./options.js";

/** The `make dev` convention (scripts/cluster.js): node i's admin port is 9463 + i. */
export const DEV_FIRST_ADMIN_PORT = 9464;
/** And its peer port 7945 + i. */
export const DEV_FIRST_PEER_PORT = 7946;

/** auto: the nodes at the URLs if any answers, else a cluster started here; running; start. */
export type ClusterMode = "auto" | "running" | "start";

export interface DemoOptions {
  readonly urls: readonly string[];
  /** No --url: the URLs are the make dev nodes' (only then may auto start a cluster). */
  readonly devNodes: boolean;
  readonly adminUrls: readonly string[];
  readonly cluster: ClusterMode;
  /** The node to cut off, by name. */
  readonly cutNode: string;
  readonly rate: number;
  readonly steadyMs: number;
  readonly cutMs: number;
  /** Load goes on at least this long after the heal (and until converged). */
  readonly afterMs: number;
  /** How long convergence may take after the heal, and again after the load stops. */
  readonly convergeTimeoutMs: number;
  readonly posts: number;
  readonly zipfExponent: number;
  readonly users: number;
  readonly readShare: number;
  readonly seed: number | undefined;
  readonly grafana: string;
  readonly jaeger: string;
  readonly prometheus: string;
  readonly json: boolean;
  readonly help: boolean;
}

export const DEMO_HELP = `Usage: node dist/load/demo.js [options]     (or: make demo [DEMO_ARGS='...'])

The guided scenario: steady load on a cluster, one node cut off from every peer (both ways,
through the admin port's /faults, so the nodes need LIKES_FAULTS=enabled, as make dev has),
then healed while the load goes on. Every second it prints what the nodes' /metrics say
(set size, pending entries per peer, replication lag); at the end it reads every acknowledged
like back from every node and prints a summary: likes sent and acknowledged, the most entries
pending, how long the nodes took to converge after the heal, and lost (must be 0).

Without --url it uses the make dev nodes (http://127.0.0.1:8080… and admin :9464…); when none
of them answers it starts a cluster of --nodes nodes itself on those ports (data in a temporary
directory, stopped and removed at the end).

Options (default in brackets):
  --url <url>               public URL of each node, repeat or comma-separate [make dev nodes]
  --admin-url <url>         admin URL of each node, in the same order as --url [make dev: :9464…]
  --nodes <n>               without --url: how many make dev nodes [3]
  --cluster <mode>          auto: the nodes at the URLs, or, without --url, a cluster started
                            here when none answers; running: never start one; start: always
                            start one (the make dev ports must be free) [auto]
  --cut-node <name>         the node to cut off [node3]
  --rate <n>                requests a second, likes and reads together [100]
  --steady <d>              phase 1, steady load before the cut [10s]
  --cut <d>                 phase 2, how long the node stays cut off [20s]
  --after <d>               phase 3, load after the heal, at least (and until converged);
                            0 = stop once converged [10s]
  --converge-timeout <d>    deadline to converge after the heal, and again after the load [30s]
  --posts <n>, --zipf <s>, --users <n>, --reads <share>
                            the load's shape, as for make load [1000, 1.1, 10000, 0.2]
  --seed <n>                seed of the load's random choices [random, printed]
  --grafana <url>, --jaeger <url>, --prometheus <url>
                            where the summary points [http://localhost:3000, :16686, :9090]
  --json                    the summary as JSON on stdout; the step lines go to stderr
  -h, --help                this text

Durations: 500ms, 30s, 2m, 1h (at most 1h); numbers are decimal (20, 0.5).

Exit status: 0 when all three hold: converged (by --converge-timeout after the heal, every
node holds what any held at the heal), settled (by --converge-timeout after the load stopped,
every version vector equal and nothing pending on any link) and lost = 0 (every acknowledged
like found on every node); 1 otherwise, or no cluster to run on; 2 bad options.
`;

const CLUSTER_MODES: readonly ClusterMode[] = ["auto", "running", "start"];
const NODE_NAME = /^[A-Za-z0-9._-]{1,63}$/;

/** Each URL once: the same node twice would make a meaningless cut and read-back. */
function distinct(urls: readonly string[], option: string): string[] {
  const seen = new Set<string>();
  for (const url of urls) {
    if (seen.has(url)) throw new UsageError(`--${option}: ${url} is given twice`);
    seen.add(url);
  }
  return [...urls];
}

/** Every phase is bounded: an hour at most (a fault's own expiry must stay within 24 h). */
const MAX_PHASE_MS = 3_600_000;

function positiveDuration(option: string, text: string): number {
  const ms = parseDuration(option, text, MAX_PHASE_MS);
  if (ms <= 0) throw new UsageError(`--${option}: must be more than 0`);
  return ms;
}

/** The names of the nodes of a cluster the demo starts itself (LocalCluster): node1 … node<n>. */
export function ownClusterNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `node${i + 1}`);
}

/** The UsageError when the node to cut is not one of those the demo would start. */
export function checkCutNodeOfOwnCluster(cutNode: string, count: number): void {
  const names = ownClusterNames(count);
  if (!names.includes(cutNode))
    throw new UsageError(
      `--cut-node: ${cutNode} is not one of the nodes it starts (${names.join(", ")})`,
    );
}

export function parseDemoOptions(argv: readonly string[]): DemoOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: "string", multiple: true },
        "admin-url": { type: "string", multiple: true },
        nodes: { type: "string", default: "3" },
        cluster: { type: "string", default: "auto" },
        "cut-node": { type: "string", default: "node3" },
        rate: { type: "string", default: "100" },
        steady: { type: "string", default: "10s" },
        cut: { type: "string", default: "20s" },
        after: { type: "string", default: "10s" },
        "converge-timeout": { type: "string", default: "30s" },
        posts: { type: "string", default: "1000" },
        zipf: { type: "string", default: "1.1" },
        users: { type: "string", default: "10000" },
        reads: { type: "string", default: "0.2" },
        seed: { type: "string" },
        grafana: { type: "string", default: "http://localhost:3000" },
        jaeger: { type: "string", default: "http://localhost:16686" },
        prometheus: { type: "string", default: "http://localhost:9090" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const cluster = values.cluster as ClusterMode;
  if (!CLUSTER_MODES.includes(cluster))
    throw new UsageError(
      `--cluster: "${values.cluster}" is not one of ${CLUSTER_MODES.join(", ")}`,
    );
  const nodes = numberOption("nodes", values.nodes, { min: 2, max: 20, integer: true });
  let urls = distinct(urlList(values.url, "url"), "url");
  let adminUrls = distinct(urlList(values["admin-url"], "admin-url"), "admin-url");
  if (urls.length === 0 && adminUrls.length > 0)
    throw new UsageError("--admin-url: needs --url (the public URLs, in the same order)");
  if (urls.length > 0 && adminUrls.length !== urls.length)
    throw new UsageError(
      `--admin-url: ${adminUrls.length} given for ${urls.length} --url; give one admin URL per node, in the same order`,
    );
  if (urls.length > 0 && cluster === "start")
    throw new UsageError("--cluster start: starts the make dev nodes; it takes no --url");
  if (urls.length === 1) throw new UsageError("--url: a cut needs at least 2 nodes");
  const devNodes = urls.length === 0;
  if (devNodes) {
    urls = Array.from({ length: nodes }, (_, i) => `http://127.0.0.1:${DEV_FIRST_PORT + i}`);
    adminUrls = Array.from(
      { length: nodes },
      (_, i) => `http://127.0.0.1:${DEV_FIRST_ADMIN_PORT + i}`,
    );
  }
  const cutNode = values["cut-node"];
  if (!NODE_NAME.test(cutNode))
    throw new UsageError(`--cut-node: "${cutNode}" is not a node name (1-63 of A-Za-z0-9._-)`);
  // The cluster it starts is known now: refused before anything starts. (auto decides to start
  // one only once no make dev node answers: demo.ts checks it there.)
  if (cluster === "start") checkCutNodeOfOwnCluster(cutNode, urls.length);
  const afterMs = parseDuration("after", values.after, MAX_PHASE_MS);
  return Object.freeze({
    urls: Object.freeze(urls),
    devNodes,
    adminUrls: Object.freeze(adminUrls),
    cluster,
    cutNode,
    rate: numberOption("rate", values.rate, { min: 0.1, max: 100_000 }),
    steadyMs: positiveDuration("steady", values.steady),
    cutMs: positiveDuration("cut", values.cut),
    afterMs,
    convergeTimeoutMs: positiveDuration("converge-timeout", values["converge-timeout"]),
    posts: numberOption("posts", values.posts, { min: 1, max: 1_000_000, integer: true }),
    zipfExponent: numberOption("zipf", values.zipf, { min: 0, max: 10 }),
    users: numberOption("users", values.users, { min: 1, max: 100_000_000, integer: true }),
    readShare: numberOption("reads", values.reads, { min: 0, max: 1 }),
    seed:
      values.seed === undefined
        ? undefined
        : numberOption("seed", values.seed, { min: 0, max: 2 ** 32 - 1, integer: true }),
    grafana: baseUrl(values.grafana, "grafana"),
    jaeger: baseUrl(values.jaeger, "jaeger"),
    prometheus: baseUrl(values.prometheus, "prometheus"),
    json: values.json,
    help: values.help,
  });
}
