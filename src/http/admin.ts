// The admin port: metrics and introspection for operators, never exposed publicly.
import type { RequestListener } from "node:http";
import type { ClusterView } from "../replication/replicator.js";
import type { Logger } from "../telemetry/types.js";
import { MethodNotAllowedError, NotFoundError } from "./errors.js";
import { sendError, sendJson } from "./respond.js";

export interface AdminDeps {
  readonly cluster: () => ClusterView;
  /** The metrics exposition for an Accept header. */
  readonly metrics: (accept: string | undefined) => Promise<{ contentType: string; body: string }>;
  readonly logger: Logger;
}

const ALLOW = ["GET", "HEAD"] as const;

export function adminListener(deps: AdminDeps): RequestListener {
  return (req, res) => {
    const path = (req.url ?? "").split("?")[0];
    const fields = { port: "admin", path };
    try {
      if (path !== "/cluster" && path !== "/metrics")
        throw new NotFoundError("the admin port serves /metrics and /cluster");
      if (req.method !== "GET" && req.method !== "HEAD")
        throw new MethodNotAllowedError(req.method ?? "", ALLOW);
      if (path === "/cluster") return sendJson(res, 200, deps.cluster());
      deps.metrics(req.headers.accept).then(
        ({ contentType, body }) => {
          res.writeHead(200, {
            "content-type": contentType,
            "content-length": Buffer.byteLength(body),
          });
          res.end(body);
        },
        (error: unknown) => sendError(res, error, deps.logger, fields),
      );
    } catch (error) {
      sendError(res, error, deps.logger, fields);
    }
  };
}
