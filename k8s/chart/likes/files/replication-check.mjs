// Replication check of a running likes cluster: `helm test` runs it in a Pod of the likes
// image, and test/deploy/replication-check.test.ts runs it against local nodes. Plain
// JavaScript with no imports beyond Node's own, so that it runs anywhere `node` does.
//
//   node replication-check.mjs [--timeout-ms=60000] [--post=P] name=url [name=url ...]
//
// For every node: GET / must name that node (the pod that answered). Then one new like is
// posted to the first node, which must answer that it stored it, and read back from every
// other node until each has it, within the timeout. Exit 0 and one line when all of that
// holds; exit 1 with the reason otherwise; exit 2 on bad arguments.
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";

class CheckFailed extends Error {}

function usage(message) {
  console.error(`replication-check: ${message}`);
  console.error(
    "usage: node replication-check.mjs [--timeout-ms=N] [--post=P] name=url [name=url ...]",
  );
  process.exit(2);
}

function parseNodes(args) {
  return args.map((arg) => {
    const at = arg.indexOf("=");
    if (at <= 0) usage(`"${arg}" is not name=url`);
    const name = arg.slice(0, at);
    let url;
    try {
      url = new URL(arg.slice(at + 1));
    } catch {
      usage(`"${arg.slice(at + 1)}" (for ${name}) is not a URL`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") usage(`${url} is not http(s)`);
    return { name, url: url.href.replace(/\/$/, "") };
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls `attempt` until it returns a value other than undefined, or throws CheckFailed (a
 * wrong answer, not worth waiting on). Other errors (connection refused, DNS not there yet, a
 * timeout) are retried until the deadline; the last one ends up in the message.
 */
async function until(deadline, what, attempt) {
  let last = "no answer yet";
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new CheckFailed(`${what}: not within the timeout (last: ${last})`);
    try {
      const value = await attempt(Math.min(left, 5000));
      if (value !== undefined) return value;
      last = "not yet";
    } catch (error) {
      if (error instanceof CheckFailed) throw error;
      last = error instanceof Error ? (error.cause?.message ?? error.message) : String(error);
    }
    await sleep(Math.min(200, Math.max(0, deadline - Date.now())));
  }
}

async function getJson(url, timeoutMs, init = {}) {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new CheckFailed(
      `${init.method ?? "GET"} ${url} answered ${res.status}, not JSON: ${text.slice(0, 200)}`,
    );
  }
  return { status: res.status, body };
}

async function check(nodes, timeoutMs, post) {
  const started = Date.now();
  const deadline = started + timeoutMs;

  for (const node of nodes) {
    await until(deadline, `GET ${node.url}/ (${node.name})`, async (t) => {
      const { status, body } = await getJson(`${node.url}/`, t);
      if (status !== 200) return undefined;
      if (body.node !== node.name)
        throw new CheckFailed(
          `GET ${node.url}/ names node ${JSON.stringify(body.node)}, want ${JSON.stringify(node.name)}`,
        );
      return body;
    });
  }

  const [writer, ...readers] = nodes;
  const user = `check-${new Date(started).toISOString()}-${randomBytes(4).toString("hex")}`;
  const like = JSON.stringify({ post, user });
  // A POST that failed in flight may have been stored: posting again is a repeat (200), fine.
  const stored = await until(deadline, `POST ${writer.url}/like (${writer.name})`, async (t) => {
    const { status, body } = await getJson(`${writer.url}/like`, t, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: like,
    });
    if (status >= 500) return undefined;
    if ((status !== 201 && status !== 200) || body.post !== post || body.user !== user)
      throw new CheckFailed(`POST ${writer.url}/like answered ${status} ${JSON.stringify(body)}`);
    if (body.node !== writer.name)
      throw new CheckFailed(
        `POST ${writer.url}/like was stored by ${JSON.stringify(body.node)}, want ${JSON.stringify(writer.name)}`,
      );
    return body;
  });

  const query = `/likes?post=${encodeURIComponent(post)}&user=${encodeURIComponent(user)}`;
  const arrivals = [];
  for (const node of nodes) {
    await until(deadline, `like ${like} from ${writer.name} on ${node.name}`, async (t) => {
      const { status, body } = await getJson(`${node.url}${query}`, t);
      if (status !== 200)
        throw new CheckFailed(`GET ${node.url}${query} answered ${status} ${JSON.stringify(body)}`);
      return body.liked === true ? true : undefined;
    });
    if (node !== writer) arrivals.push(`${node.name} after ${Date.now() - started} ms`);
  }

  return readers.length === 0
    ? `ok: ${writer.name} stored ${like} (${stored.node}); one node, nothing to replicate to`
    : `ok: ${writer.name} stored ${like}; read back from ${arrivals.join(", ")}`;
}

const { values, positionals } = (() => {
  try {
    return parseArgs({
      options: {
        "timeout-ms": { type: "string", default: "60000" },
        post: { type: "string", default: "replication-check" },
      },
      allowPositionals: true,
    });
  } catch (error) {
    return usage(error.message);
  }
})();
const timeoutMs = Number(values["timeout-ms"]);
if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
  usage("--timeout-ms must be a positive integer");
if (positionals.length === 0) usage("no node given");
const nodes = parseNodes(positionals);
if (new Set(nodes.map((n) => n.name)).size !== nodes.length) usage("a node name is given twice");

try {
  console.log(await check(nodes, timeoutMs, values.post));
} catch (error) {
  console.error(`replication check FAILED: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
}
