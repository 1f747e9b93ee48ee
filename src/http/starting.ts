// What the public and admin ports answer while a node starts (its store not open yet, or a
// snapshot being installed): alive, not ready and why, and the metrics; nothing else.
import type { RequestListener } from "node:http";
import type { Logger } from "../telemetry/types.js";
import { NotReadyError } from "./errors.js";
import { sendError, sendJson, sendMetrics, type MetricsRenderer } from "./respond.js";

export interface StartingDeps {
  /** Why the node is not ready yet. */
  readonly reason: () => string;
  /** The admin port's metrics exposition; the public port has none. */
  readonly metrics?: MetricsRenderer;
  readonly logger: Logger;
}

export function startingListener(deps: StartingDeps): RequestListener {
  return (req, res) => {
    const path = (req.url ?? "").split("?")[0] ?? "";
    const get = req.method === "GET" || req.method === "HEAD";
    if (get && path === "/healthz" && !deps.metrics) return sendJson(res, 200, { status: "ok" });
    if (get && path === "/metrics" && deps.metrics) {
      sendMetrics(res, deps.metrics, deps.logger, { path });
      return;
    }
    sendError(res, new NotReadyError(deps.reason()), deps.logger, { path });
  };
}
