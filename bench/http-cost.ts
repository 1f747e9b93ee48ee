// What one keep-alive HTTP exchange costs this machine in CPU, on each side, when requests
// follow each other and when they come spaced out as at a few hundred likes a second:
// `npm run build:bench`, then node dist-bench/bench/http-cost.js   (prints a Markdown table)
// On a VM every wakeup of an idle process is expensive; this is the floor under a like's cost
// at low rates, where every push and every POST is a message of its own.
import { fork } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";

const BODY = Buffer.alloc(100);
const REQUESTS = 2000;
const GAPS_MS = [0, 1, 10];

interface CpuReport {
  readonly micros: number;
}

function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** The child: a server that answers every POST with 2 bytes and reports its CPU when asked. */
function serve(): void {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": 2 });
      res.end("ok");
    });
  });
  server.listen(0, "127.0.0.1", () => {
    process.send?.({ port: (server.address() as AddressInfo).port });
  });
  process.on("message", () => process.send?.({ micros: cpuMicros() } satisfies CpuReport));
}

function ask<T>(child: ReturnType<typeof fork>): Promise<T> {
  return new Promise((resolve) => {
    child.once("message", (message) => resolve(message as T));
    child.send("cpu");
  });
}

function post(agent: http.Agent, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, method: "POST", path: "/", agent },
      (res) => {
        res.resume();
        res.on("end", resolve);
      },
    );
    req.on("socket", (socket) => socket.setNoDelay(true));
    req.on("error", reject);
    req.end(BODY);
  });
}

async function measure(): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ["server"]);
  const { port } = await new Promise<{ port: number }>((resolve) =>
    child.once("message", (m) => resolve(m as { port: number })),
  );
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  console.log("| gap between requests | client CPU per request | server CPU per request |");
  console.log("| --- | --- | --- |");
  try {
    await post(agent, port); // the connection, opened once
    for (const gap of GAPS_MS) {
      const serverBefore = (await ask<CpuReport>(child)).micros;
      const clientBefore = cpuMicros();
      for (let i = 0; i < REQUESTS; i++) {
        await post(agent, port);
        if (gap > 0) await new Promise((resolve) => setTimeout(resolve, gap));
      }
      const client = (cpuMicros() - clientBefore) / REQUESTS;
      const server = ((await ask<CpuReport>(child)).micros - serverBefore) / REQUESTS;
      console.log(`| ${gap} ms | ${client.toFixed(0)} µs | ${server.toFixed(0)} µs |`);
    }
  } finally {
    agent.destroy();
    child.kill();
  }
}

if (process.argv[2] === "server") serve();
else await measure();
