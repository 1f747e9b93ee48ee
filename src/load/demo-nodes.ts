// The scenario's view of each node, over HTTP: who it is (GET / and the admin port's /cluster),
// its version vector and peers, its metrics, the cut (PUT/DELETE /faults/*) and the read-back
// of a post's users (GET /likes?detail=true, page by page).
import { probe } from "./client.js";
import { nodeMetricsOf, type NodeMetrics } from "./node-metrics.js";

export interface DemoNode {
  readonly name: string;
  readonly url: string;
  readonly adminUrl: string;
}

export interface ClusterState {
  readonly node: string;
  /** origin → highest contiguous seq held. */
  readonly vv: Readonly<Record<string, number>>;
  readonly peers: readonly {
    readonly node: string | null;
    readonly up: boolean | null;
    readonly pending: number;
  }[];
}

export class DemoError extends Error {
  override readonly name = "DemoError";
}

const ADMIN_TIMEOUT_MS = 5000;

async function call(url: string, init: RequestInit = {}): Promise<Response> {
  const attempt = () => fetch(url, { ...init, signal: AbortSignal.timeout(ADMIN_TIMEOUT_MS) });
  try {
    try {
      return await attempt();
    } catch (error) {
      // A kept-alive connection the server closed as it was reused fails at once. Every call
      // here is idempotent (GET, and PUT or DELETE of a fault): sent again, once.
      if (causeOf(error) !== "ECONNRESET") throw error;
      return await attempt();
    }
  } catch (error) {
    throw new DemoError(`${init.method ?? "GET"} ${url}: ${causeOf(error)}`);
  }
}

function causeOf(error: unknown): string {
  const code = (error as { cause?: { code?: unknown } }).cause?.code;
  return typeof code === "string" ? code : String(error);
}

/**
 * The JSON body of a 2xx answer. `what` names the port the URL should be (a likes admin port, a
 * likes node), for the one-line DemoError when the answer is something else's.
 */
async function json(url: string, what: string, init: RequestInit = {}): Promise<unknown> {
  const res = await call(url, init);
  const text = await res.text();
  const request = `${init.method ?? "GET"} ${url}`;
  if (!res.ok) throw new DemoError(`${request} answered ${res.status}: ${text.trim()}`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new DemoError(`${request}: not ${what} (not JSON)`);
  }
}

const ADMIN_PORT = "a likes admin port";
const PUBLIC_PORT = "a likes node";

const isRecord = (x: unknown): x is Record<string, unknown> =>
  typeof x === "object" && x !== null && !Array.isArray(x);

/**
 * Each node's name from its public GET / and its admin /cluster, which must agree; each node
 * once (two URLs of the same node would make a meaningless cut and read-back).
 */
export async function identify(
  urls: readonly string[],
  adminUrls: readonly string[],
  probeTimeoutMs = 2000,
): Promise<DemoNode[]> {
  const nodes = await Promise.all(
    urls.map(async (url, i) => {
      const adminUrl = adminUrls[i] ?? "";
      const answer = await probe(url, probeTimeoutMs);
      if (answer.node === undefined)
        throw new DemoError(`${url} does not answer (${answer.error})`);
      const view = await clusterState({ name: answer.node, url, adminUrl });
      if (view.node !== answer.node)
        throw new DemoError(
          `${url} is ${answer.node} but the admin URL ${adminUrl} is ${view.node}: give --admin-url in the order of --url`,
        );
      return { name: answer.node, url, adminUrl };
    }),
  );
  const seen = new Map<string, DemoNode>();
  for (const node of nodes) {
    const before = seen.get(node.name);
    if (before)
      throw new DemoError(
        `${node.name} answers at both ${before.url} and ${node.url}: give each node once`,
      );
    seen.set(node.name, node);
  }
  return nodes;
}

export async function clusterState(node: DemoNode): Promise<ClusterState> {
  const url = `${node.adminUrl}/cluster`;
  const body = await json(url, ADMIN_PORT);
  if (
    !isRecord(body) ||
    typeof body.node !== "string" ||
    !isRecord(body.vv) ||
    !Array.isArray(body.peers)
  )
    throw new DemoError(`GET ${url}: not ${ADMIN_PORT} (no node, vv and peers)`);
  return body as unknown as ClusterState;
}

export async function metricsOf(node: DemoNode): Promise<NodeMetrics> {
  const res = await call(`${node.adminUrl}/metrics`);
  const text = await res.text();
  if (!res.ok) throw new DemoError(`GET ${node.adminUrl}/metrics answered ${res.status}`);
  return nodeMetricsOf(text);
}

/** Fails clearly when the node's /faults is off (LIKES_FAULTS unset), before any load. */
export async function checkFaultsEnabled(node: DemoNode): Promise<void> {
  const res = await call(`${node.adminUrl}/faults`);
  await res.arrayBuffer();
  if (res.status === 404)
    throw new DemoError(
      `${node.name} has fault injection off (GET ${node.adminUrl}/faults answered 404): start its nodes with LIKES_FAULTS=enabled, as make dev does`,
    );
  if (!res.ok) throw new DemoError(`GET ${node.adminUrl}/faults answered ${res.status}`);
}

/**
 * Cuts the node off from every peer, both ways. `safetyMs` is the fault's own expiry: should
 * the scenario die before it heals the cut, the node heals by itself.
 */
export async function cutOff(node: DemoNode, safetyMs: number): Promise<void> {
  await json(`${node.adminUrl}/faults/%2A`, ADMIN_PORT, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ cut: "both", for: `${Math.ceil(safetyMs / 1000)}s` }),
  });
}

export async function heal(node: DemoNode): Promise<void> {
  await json(`${node.adminUrl}/faults/%2A`, ADMIN_PORT, { method: "DELETE" });
}

/** Every user holding a like of `post` on the node, page by page. */
export async function usersOf(node: DemoNode, post: string): Promise<Set<string>> {
  const users = new Set<string>();
  let cursor: string | null = null;
  do {
    const query: string =
      `post=${encodeURIComponent(post)}&detail=true&limit=1000` +
      (cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`);
    const url = `${node.url}/likes?${query}`;
    const page = await json(url, PUBLIC_PORT);
    if (
      !isRecord(page) ||
      !Array.isArray(page.users) ||
      (page.next !== null && typeof page.next !== "string")
    )
      throw new DemoError(`GET ${url}: not ${PUBLIC_PORT} (no users and next)`);
    for (const u of page.users) users.add(String(u));
    cursor = page.next;
  } while (cursor !== null);
  return users;
}

/** Every vector holds at least what `target` holds, origin by origin. */
export function covers(
  vv: Readonly<Record<string, number>>,
  target: Readonly<Record<string, number>>,
): boolean {
  return Object.entries(target).every(([origin, seq]) => (vv[origin] ?? 0) >= seq);
}

/** The join of vectors: the highest seq of each origin. */
export function joinVectors(
  vectors: readonly Readonly<Record<string, number>>[],
): Record<string, number> {
  const joined: Record<string, number> = {};
  for (const vv of vectors)
    for (const [origin, seq] of Object.entries(vv))
      joined[origin] = Math.max(joined[origin] ?? 0, seq);
  return joined;
}

export function sameVector(
  a: Readonly<Record<string, number>>,
  b: Readonly<Record<string, number>>,
): boolean {
  return covers(a, b) && covers(b, a);
}
