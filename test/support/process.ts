import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { GiveUp, waitFor } from "./wait.js";

const MAIN = fileURLToPath(new URL("../../dist/main.js", import.meta.url));

export interface Ports {
  readonly http: number;
  readonly peer?: number;
  readonly admin?: number;
}

/** A real `node dist/main.js` process, with its JSON log lines collected. */
export class NodeProcess {
  readonly lines: Record<string, unknown>[] = [];
  readonly stderr: string[] = [];
  private exit: Promise<number | null>;
  private child: ChildProcess;
  ports: Ports | undefined;

  constructor(readonly env: Record<string, string>) {
    this.child = spawn(process.execPath, [MAIN], {
      env: {
        PATH: process.env.PATH ?? "",
        LIKES_HOST: "127.0.0.1",
        OTEL_SDK_DISABLED: "true",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    createInterface({ input: this.child.stdout! }).on("line", (line) => {
      try {
        this.lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        this.lines.push({ message: line });
      }
    });
    createInterface({ input: this.child.stderr! }).on("line", (line) => this.stderr.push(line));
    // "close", not "exit": the child's output is read to its end before anyone looks at it.
    this.exit = new Promise((resolve) => this.child.once("close", (code) => resolve(code)));
  }

  /** Starts a node and waits until it logs that it listens. */
  static async start(env: Record<string, string>, timeoutMs = 15_000): Promise<NodeProcess> {
    const node = new NodeProcess(env);
    let exited = false;
    void node.exit.then(() => (exited = true));
    try {
      await waitFor(
        "the node to listen",
        () => {
          if (exited) throw new GiveUp(`node exited early: ${node.stderr.join("\n")}`);
          const line = node.lines.find((l) => l.message === "listening");
          if (line) node.ports = line as unknown as Ports;
          return line !== undefined;
        },
        { timeoutMs },
      );
    } catch (error) {
      // A node that did not come up is not left running behind the failed test.
      await node.kill("SIGKILL");
      throw error;
    }
    return node;
  }

  get url(): string {
    return `http://127.0.0.1:${this.ports?.http}`;
  }

  get adminUrl(): string {
    return `http://127.0.0.1:${this.ports?.admin}`;
  }

  kill(signal: NodeJS.Signals): Promise<number | null> {
    this.child.kill(signal);
    return this.exit;
  }

  exited(): Promise<number | null> {
    return this.exit;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }
}

/**
 * Runs `node dist/main.js` to completion, for configuration errors. A node that starts after all
 * (a bad value accepted) listens on free ports of 127.0.0.1, never the defaults, and is killed
 * after `timeoutMs`, its code then null.
 */
export function runToExit(
  env: Record<string, string>,
  timeoutMs = 20_000,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN], {
      env: {
        PATH: process.env.PATH ?? "",
        LIKES_HOST: "127.0.0.1",
        LIKES_HTTP_PORT: "0",
        LIKES_PEER_PORT: "0",
        LIKES_ADMIN_PORT: "0",
        OTEL_SDK_DISABLED: "true",
        ...env,
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const killer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    // "close", not "exit": stderr is read to its end.
    child.once("close", (code) => {
      clearTimeout(killer);
      resolve({ code, stderr });
    });
  });
}

export async function postLike(
  url: string,
  post: string,
  user: string,
  query = "",
): Promise<Response> {
  return fetch(`${url}/like${query}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ post, user }),
  });
}

export async function countOf(url: string, post: string): Promise<number> {
  const res = await fetch(`${url}/likes?post=${encodeURIComponent(post)}`);
  return ((await res.json()) as { likes: number }).likes;
}
