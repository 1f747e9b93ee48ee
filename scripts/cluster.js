#!/usr/bin/env node
// Starts a local cluster of likes nodes on 127.0.0.1 (`npm run cluster -- --nodes N`).
// Node i (1-based) listens on 8079+i (public), 7945+i (peer) and 9463+i (admin), keeps its data
// in .data/node<i>, and all share a cluster secret generated once into .data/cluster-secret.
// Fault injection is on (LIKES_FAULTS=enabled): make fault-partition, make fault-clear.
// Ctrl-C (or SIGTERM) stops every node gracefully.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { nodes: { type: "string", default: "3" } } });
const count = Number(values.nodes);
if (!Number.isInteger(count) || count < 1 || count > 20) {
  console.error("cluster: --nodes must be an integer from 1 to 20");
  process.exit(2);
}

mkdirSync(".data", { recursive: true });
const secretFile = ".data/cluster-secret";
if (!existsSync(secretFile))
  writeFileSync(secretFile, randomBytes(32).toString("hex"), { mode: 0o600 });
const secret = readFileSync(secretFile, "utf8").trim();

const nodes = Array.from({ length: count }, (_, i) => ({
  name: `node${i + 1}`,
  http: 8080 + i,
  peer: 7946 + i,
  admin: 9464 + i,
}));

const colors = [36, 33, 35, 32, 34, 31];
const children = nodes.map((node, i) => {
  const peers = nodes.filter((other) => other !== node).map((other) => `127.0.0.1:${other.peer}`);
  const child = spawn(process.execPath, ["dist/main.js"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      LIKES_NODE_NAME: node.name,
      LIKES_HOST: "127.0.0.1",
      LIKES_HTTP_PORT: String(node.http),
      LIKES_PEER_PORT: String(node.peer),
      LIKES_ADMIN_PORT: String(node.admin),
      LIKES_PEERS: peers.join(","),
      LIKES_DATA_DIR: `.data/${node.name}`,
      LIKES_CLUSTER_SECRET: secret,
      // A local cluster is for trying things: /faults on the admin port (make fault-partition).
      LIKES_FAULTS: "enabled",
    },
  });
  const prefix = `\x1b[${colors[i % colors.length]}m${node.name.padEnd(7)}\x1b[0m| `;
  for (const stream of [child.stdout, child.stderr])
    createInterface({ input: stream }).on("line", (line) =>
      process.stdout.write(prefix + line + "\n"),
    );
  return child;
});

console.log("likes cluster on 127.0.0.1:");
for (const n of nodes)
  console.log(
    `  ${n.name}: http://127.0.0.1:${n.http}  peer :${n.peer}  admin http://127.0.0.1:${n.admin}/cluster`,
  );
console.log("Ctrl-C stops the cluster.");

let stopping = false;
let alive = children.length;
const stop = () => {
  if (stopping) return;
  stopping = true;
  for (const child of children) child.kill("SIGTERM");
};
for (const child of children)
  child.on("exit", (code) => {
    alive--;
    if (!stopping && code !== 0) {
      console.error(`cluster: a node exited with code ${code}; stopping the others`);
      process.exitCode = 1;
      stop();
    }
    if (alive === 0) process.exit();
  });
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
