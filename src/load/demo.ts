// The guided scenario's entry: `node dist/load/demo.js [options]` (make demo). Finds the cluster
// (or starts one), runs the scenario (demo-scenario.ts) and prints its summary; exit 1 when a
// like was lost or the nodes did not converge or settle.
import { randomInt } from "node:crypto";
import { probe } from "./client.js";
import { LocalCluster } from "./demo-cluster.js";
import { DemoError, checkFaultsEnabled, identify, type DemoNode } from "./demo-nodes.js";
import {
  DEMO_HELP,
  checkCutNodeOfOwnCluster,
  parseDemoOptions,
  type DemoOptions,
} from "./demo-options.js";
import { demoSummaryText, type Reachable } from "./demo-report.js";
import { Scenario } from "./demo-scenario.js";
import { UsageError } from "./options.js";
import { exitQuietlyWhenOutputCloses } from "./streams.js";

const PROBE_TIMEOUT_MS = 2000;

function fail(message: string, code: number): never {
  process.stderr.write(`demo: ${message}\n`);
  process.exit(code);
}

/** Does anything answer HTTP at the URL? (The stack's UIs, for the summary's hints.) */
async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

/**
 * The nodes to run on: those at the URLs, or a cluster started here. `starting` gets a cluster
 * the demo starts as soon as its nodes are spawned, so that a signal can stop it while starting.
 */
async function findCluster(
  options: DemoOptions,
  say: (line: string) => void,
  starting: (cluster: LocalCluster) => void,
): Promise<{ nodes: DemoNode[]; started: LocalCluster | undefined }> {
  // With --url the user named the nodes: auto starts nothing in their place.
  if (options.cluster === "auto" && options.devNodes) {
    const probes = await Promise.all(options.urls.map((u) => probe(u, PROBE_TIMEOUT_MS)));
    const up = probes.filter((p) => p.node !== undefined);
    if (up.length > 0 && up.length < probes.length)
      throw new DemoError(
        `only some nodes answer: ${probes.map((p) => `${p.url} ${p.node ?? `(${p.error})`}`).join(", ")}`,
      );
    if (up.length === 0) {
      checkCutNodeOfOwnCluster(options.cutNode, options.urls.length);
      say(
        `demo: no node answers at ${options.urls.join(", ")}; starting ${options.urls.length} nodes here (make dev ports, LIKES_FAULTS=enabled, data in a temporary directory)`,
      );
      const started = await LocalCluster.start(options.urls.length, starting);
      return { nodes: started.nodes, started };
    }
  }
  if (options.cluster === "start") {
    checkCutNodeOfOwnCluster(options.cutNode, options.urls.length);
    say(`demo: starting ${options.urls.length} nodes on the make dev ports`);
    const started = await LocalCluster.start(options.urls.length, starting);
    return { nodes: started.nodes, started };
  }
  return {
    nodes: await identify(options.urls, options.adminUrls, PROBE_TIMEOUT_MS),
    started: undefined,
  };
}

async function main(options: DemoOptions): Promise<number> {
  // With --json stdout carries the summary alone; what a person reads goes to stderr.
  const out = options.json ? process.stderr : process.stdout;
  const say = (line: string) => out.write(line + "\n");
  let started: LocalCluster | undefined;
  let scenario: Scenario | undefined;
  /** Set by a signal: its clean-up, which ends the process. */
  let stopping: Promise<never> | undefined;
  const cleanUp = async () => {
    await scenario
      ?.clearCut()
      .catch((error: unknown) => say(`demo: could not heal: ${String(error)}`));
    await started?.stop();
  };
  // Before anything starts: a signal while the demo's own cluster starts stops it too.
  const onSignal = () => {
    if (stopping) return;
    say("demo: interrupted; healing the cut and stopping what the demo started");
    const exit = () => process.exit(130);
    stopping = cleanUp().then(exit, exit);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const found = await findCluster(options, say, (cluster) => (started = cluster));
    const nodes = found.nodes;
    for (const n of nodes) say(`demo: ${n.name} at ${n.url}, admin ${n.adminUrl}`);
    const seed = options.seed ?? randomInt(2 ** 32);
    scenario = new Scenario({
      options,
      nodes,
      seed,
      startedCluster: found.started !== undefined,
      say,
    });
    await checkFaultsEnabled(scenario.cutNode);
    const summary = await scenario.run();
    const [grafana, jaeger, prometheus] = await Promise.all(
      [options.grafana, options.jaeger, options.prometheus].map(answers),
    );
    const reachable: Reachable = {
      grafana: grafana === true,
      jaeger: jaeger === true,
      prometheus: prometheus === true,
    };
    if (options.json) process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
    else out.write(demoSummaryText(summary, reachable));
    if (options.json) process.stderr.write(demoSummaryText(summary, reachable));
    return summary.lost === 0 && summary.converged && summary.settled ? 0 : 1;
  } finally {
    // After a signal, its clean-up ends the process (130), whatever the run came to: what that
    // clean-up broke (a node stopped under a request) is no failure to tell.
    if (stopping) await stopping;
    else await cleanUp();
  }
}

// A reader that went away (`make demo | head`): end quietly. The exit stops what the demo
// started; a cut in force on a running cluster ends by its own expiry.
exitQuietlyWhenOutputCloses();

let options: DemoOptions;
try {
  options = parseDemoOptions(process.argv.slice(2));
} catch (error) {
  if (error instanceof UsageError)
    fail(`${error.message}\n(node dist/load/demo.js --help lists the options)`, 2);
  throw error;
}
if (options.help) {
  process.stdout.write(DEMO_HELP);
  process.exit(0);
}
try {
  process.exit(await main(options));
} catch (error) {
  if (error instanceof DemoError) fail(error.message, 1);
  if (error instanceof UsageError)
    fail(`${error.message}\n(node dist/load/demo.js --help lists the options)`, 2);
  throw error;
}
