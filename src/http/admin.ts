import type { RequestListener, ServerResponse } from "node:http";
import type { ClusterView } from "../replication/replicator.js";

export interface AdminDeps {
  readonly cluster: () => ClusterView;
  /** The metrics exposition for an Accept header. */
  readonly metrics: (accept: string | undefined) => Promise<{ contentType: string; body: string }>;
}

/** The admin port: metrics and introspection for operators, never exposed publicly. */
export function adminListener(deps: AdminDeps): RequestListener {
  return (req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path !== "/cluster" && path !== "/metrics")
      return send(res, 404, {
        error: { code: "not_found", message: "the admin port serves /metrics and /cluster" },
      });
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD");
      return send(res, 405, { error: { code: "method_not_allowed", message: "use GET" } });
    }
    if (path === "/cluster") return send(res, 200, deps.cluster());
    deps.metrics(req.headers.accept).then(
      ({ contentType, body }) => {
        res.writeHead(200, {
          "content-type": contentType,
          "content-length": Buffer.byteLength(body),
        });
        res.end(body);
      },
      (error: unknown) => send(res, 500, { error: { code: "internal", message: String(error) } }),
    );
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
