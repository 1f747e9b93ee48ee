import type { RequestListener, ServerResponse } from "node:http";
import type { ClusterView } from "../replication/replicator.js";

export interface AdminDeps {
  readonly cluster: () => ClusterView;
}

/** The admin port: introspection for operators, never exposed publicly. */
export function adminListener(deps: AdminDeps): RequestListener {
  return (req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path !== "/cluster")
      return send(res, 404, { error: { code: "not_found", message: "try /cluster" } });
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD");
      return send(res, 405, { error: { code: "method_not_allowed", message: "use GET" } });
    }
    send(res, 200, deps.cluster());
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}
