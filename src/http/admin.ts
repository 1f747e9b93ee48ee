// The admin port: metrics and introspection for operators, never exposed publicly; with
// LIKES_FAULTS=enabled, also /faults, which injects faults in the peer link (README, "Fault injection").
import type { IncomingMessage, RequestListener } from "node:http";
import { trace } from "@opentelemetry/api";
import {
  FaultInputError,
  parseFaultPeer,
  parseFaultRequest,
  type ActiveFault,
  type FaultRequest,
} from "../replication/faults.js";
import type { ClusterView } from "../replication/replicator.js";
import type { Logger } from "../telemetry/types.js";
import { decodeJson, isUtf8Charset, readBody } from "./body.js";
import {
  InvalidInputError,
  MethodNotAllowedError,
  NotFoundError,
  UnsupportedMediaTypeError,
} from "./errors.js";
import { sendError, sendJson, sendMetrics, type MetricsRenderer } from "./respond.js";
import { nameByRoute } from "../telemetry/server-spans.js";

/** What /faults reads and changes (replication/faults.ts's Faults). */
export interface FaultsAdmin {
  list(): ActiveFault[];
  set(request: FaultRequest): ActiveFault[];
  clear(peer?: string): number;
}

export interface AdminDeps {
  readonly cluster: () => ClusterView;
  /** The metrics exposition for an Accept header. */
  readonly metrics: MetricsRenderer;
  readonly logger: Logger;
  /** LIKES_FAULTS=enabled only: without it /faults answers 404. */
  readonly faults?: FaultsAdmin;
}

const ALLOW = ["GET", "HEAD"] as const;
const FAULTS_ALLOW = ["GET", "HEAD", "DELETE"] as const;
const FAULT_ALLOW = ["PUT", "DELETE"] as const;
const FAULT_BODY_LIMIT = 4096;
/** The routes a SERVER span is named by, as `PUT /faults/:peer`; others keep the bare method. */
const ROUTES = new Set(["/cluster", "/metrics", "/faults", "/faults/:peer"]);

export function adminListener(deps: AdminDeps): RequestListener {
  return (req, res) => {
    const path = (req.url ?? "").split("?")[0] ?? "";
    const fields = { port: "admin", path };
    const route = path.startsWith("/faults/") ? "/faults/:peer" : path;
    if (ROUTES.has(route)) nameByRoute(trace.getActiveSpan(), req.method ?? "", route);
    try {
      if (path === "/faults" || path.startsWith("/faults/")) {
        faultsRoute(deps, req, path).then(
          ({ status, body }) => sendJson(res, status, body),
          (error: unknown) => sendError(res, error, deps.logger, fields),
        );
        return;
      }
      if (path !== "/cluster" && path !== "/metrics")
        throw new NotFoundError("the admin port serves /metrics and /cluster");
      if (req.method !== "GET" && req.method !== "HEAD")
        throw new MethodNotAllowedError(req.method ?? "", ALLOW);
      if (path === "/cluster") return sendJson(res, 200, deps.cluster());
      sendMetrics(res, deps.metrics, deps.logger, fields);
    } catch (error) {
      sendError(res, error, deps.logger, fields);
    }
  };
}

/** GET /faults, DELETE /faults, PUT /faults/<peer>, DELETE /faults/<peer>. */
async function faultsRoute(
  deps: AdminDeps,
  req: IncomingMessage,
  path: string,
): Promise<{ status: number; body: unknown }> {
  const faults = deps.faults;
  if (!faults)
    throw new NotFoundError(
      "fault injection is off on this node (LIKES_FAULTS=enabled turns it on)",
    );
  const method = req.method ?? "";
  // A parameter taken for an option (`?for=1s`, `?peer=`) would set a fault for good, or clear
  // every peer's: refused, as the public port refuses unknown ones.
  if ((req.url ?? "").includes("?"))
    throw new InvalidInputError(
      "invalid_query",
      'the /faults routes take no query parameters (the peer is in the path, the duration is the body\'s "for")',
    );
  try {
    if (path === "/faults") {
      if (method === "GET" || method === "HEAD")
        return { status: 200, body: { faults: faults.list() } };
      if (method === "DELETE")
        return { status: 200, body: { cleared: faults.clear(), faults: [] } };
      throw new MethodNotAllowedError(method, FAULTS_ALLOW);
    }
    let peer: string;
    try {
      peer = decodeURIComponent(path.slice("/faults/".length));
    } catch {
      throw new FaultInputError("the peer in the path is not valid percent-encoding");
    }
    if (method === "DELETE") {
      const cleared = faults.clear(parseFaultPeer(peer));
      return { status: 200, body: { cleared, faults: faults.list() } };
    }
    if (method !== "PUT") throw new MethodNotAllowedError(method, FAULT_ALLOW);
    const type = req.headers["content-type"];
    if (!/^application\/json\s*(;|$)/i.test(type ?? "") || !isUtf8Charset(type))
      throw new UnsupportedMediaTypeError("the body must be application/json");
    const body = decodeJson(await readBody(req, FAULT_BODY_LIMIT));
    return { status: 200, body: { faults: faults.set(parseFaultRequest(peer, body)) } };
  } catch (error) {
    if (error instanceof FaultInputError) throw new InvalidInputError(error.code, error.message);
    throw error;
  }
}
