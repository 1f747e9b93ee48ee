// The HTTP side of the load generator: one keep-alive agent per target URL, a deadline per
// request, and the probe of GET / at start.
import http from "node:http";
import https from "node:https";
import { ABANDONED, type LoadRequest, type Outcome } from "./workload.js";

export class HttpTargets {
  private readonly agents: http.Agent[];
  private readonly pending = new Set<http.ClientRequest>();

  constructor(
    readonly urls: readonly string[],
    private readonly timeoutMs: number,
    /** Sockets per target: the in-flight cap, so no request waits inside an agent. */
    maxSockets: number,
  ) {
    this.agents = urls.map((u) => {
      const options = { keepAlive: true, maxSockets, scheduling: "lifo" as const };
      return new URL(u).protocol === "https:" ? new https.Agent(options) : new http.Agent(options);
    });
  }

  /** Sends one request; resolves with the status, or the cause when there was no answer. */
  send(request: LoadRequest): Promise<Outcome> {
    const base = this.urls[request.target];
    const agent = this.agents[request.target];
    if (base === undefined || agent === undefined)
      return Promise.resolve({ error: `no target ${request.target}` });
    return exchange(base + request.path, {
      method: request.method,
      body: request.body,
      agent,
      timeoutMs: this.timeoutMs,
      pending: this.pending,
    }).then((answer) => ("status" in answer ? { status: answer.status } : answer));
  }

  /** Ends every request still in flight (each resolves with error ABANDONED). */
  abortAll(): void {
    for (const req of this.pending) req.destroy(new AbortedError());
  }

  close(): void {
    for (const agent of this.agents) agent.destroy();
  }
}

class TimeoutError extends Error {
  override readonly name = "TimeoutError";
}
class AbortedError extends Error {
  override readonly name = "AbortedError";
}

function causeOf(error: unknown): string {
  if (error instanceof TimeoutError) return "timeout";
  if (error instanceof AbortedError) return ABANDONED;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" ? code : error instanceof Error ? error.message : String(error);
}

type Answer = { status: number; body: string } | { error: string };

function exchange(
  url: string,
  o: {
    method: string;
    body?: string | undefined;
    agent?: http.Agent;
    timeoutMs: number;
    pending?: Set<http.ClientRequest>;
    keepBody?: boolean;
  },
): Promise<Answer> {
  return new Promise((resolve) => {
    const target = new URL(url);
    const request = target.protocol === "https:" ? https.request : http.request;
    const headers: http.OutgoingHttpHeaders = {};
    if (o.body !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = Buffer.byteLength(o.body);
    }
    let done = false;
    const finish = (answer: Answer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      o.pending?.delete(req);
      resolve(answer);
    };
    const req = request(target, { method: o.method, agent: o.agent ?? false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => {
        if (o.keepBody) chunks.push(chunk);
      });
      res.on("end", () =>
        finish({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", (error) => finish({ error: causeOf(error) }));
    });
    // A deadline over the whole exchange, not an idle timeout on the socket.
    const timer = setTimeout(() => req.destroy(new TimeoutError()), o.timeoutMs);
    o.pending?.add(req);
    req.on("error", (error) => finish({ error: causeOf(error) }));
    req.end(o.body);
  });
}

export interface ProbeResult {
  readonly url: string;
  /** The node's name from GET /, when it answered 200 with one. */
  readonly node?: string;
  readonly error?: string;
}

/** GET / on a base URL with a short deadline, on a fresh connection. */
export async function probe(url: string, timeoutMs: number): Promise<ProbeResult> {
  const answer = await exchange(`${url}/`, { method: "GET", timeoutMs, keepBody: true });
  if ("error" in answer) return { url, error: answer.error };
  if (answer.status !== 200) return { url, error: `GET / answered ${answer.status}` };
  try {
    const body = JSON.parse(answer.body) as { node?: unknown };
    if (typeof body.node === "string") return { url, node: body.node };
  } catch {
    // Not JSON: not a likes node.
  }
  return { url, error: "GET / did not answer like a likes node" };
}
