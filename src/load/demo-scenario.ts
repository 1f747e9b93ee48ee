// The guided scenario itself: steady load, one node cut off from every peer, the heal while the
// load goes on, then the drain; a step line a second from the nodes' /metrics; convergence
// measured on the version vectors of /cluster; every acknowledged like read back from every node.
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { AckedLikes } from "./acked-likes.js";
import { HttpTargets } from "./client.js";
import {
  DemoError,
  clusterState,
  covers,
  cutOff,
  heal,
  joinVectors,
  metricsOf,
  sameVector,
  usersOf,
  type DemoNode,
} from "./demo-nodes.js";
import type { DemoOptions } from "./demo-options.js";
import type { DemoSummary, TracedLike } from "./demo-report.js";
import { StepRecorder, type Phase } from "./demo-steps.js";
import { scenarioSummary } from "./demo-summary.js";
import { LoadRun, OpenLoopSchedule } from "./schedule.js";
import { LoadStats, summarize } from "./stats.js";
import { Workload, type LoadRequest, type Outcome } from "./workload.js";
import { seededRandom } from "./zipf.js";

const TICK_MS = 5;
const STEP_MS = 1000;
/** How often the vectors are read while waiting for convergence: its resolution. */
const POLL_MS = 50;
const REQUEST_TIMEOUT_MS = 5000;
const CONCURRENCY = 256;
const READ_BACK_PARALLEL = 8;
/** A fault's own expiry past the planned heal, should the scenario die before healing. */
const FAULT_SAFETY_MS = 60_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

export interface ScenarioInput {
  readonly options: DemoOptions;
  readonly nodes: readonly DemoNode[];
  readonly seed: number;
  readonly startedCluster: boolean;
  /** Where the step lines go. */
  readonly say: (line: string) => void;
}

export class Scenario {
  private readonly clock = { now: () => performance.now() };
  private readonly acked: AckedLikes;
  private readonly steps = new StepRecorder();
  private readonly cut: DemoNode;
  private phase: Phase = "steady";
  private startedAt = 0;
  private sampling: Promise<void> | undefined;
  /** The fault is in force: what an interrupted run must clear. */
  cutInForce = false;

  constructor(private readonly input: ScenarioInput) {
    const cut = input.nodes.find((n) => n.name === input.options.cutNode);
    if (!cut)
      throw new DemoError(
        `--cut-node ${input.options.cutNode} is not one of the nodes (${input.nodes.map((n) => n.name).join(", ")})`,
      );
    this.cut = cut;
    this.acked = new AckedLikes(input.nodes.length);
  }

  get cutNode(): DemoNode {
    return this.cut;
  }

  async run(): Promise<DemoSummary> {
    const { options, nodes, seed, say } = this.input;
    const others = nodes.filter((n) => n !== this.cut);
    const stats = new LoadStats();
    const targets = new HttpTargets(
      nodes.map((n) => n.url),
      REQUEST_TIMEOUT_MS,
      CONCURRENCY,
    );
    const workload = new Workload(
      {
        posts: options.posts,
        zipfExponent: options.zipfExponent,
        users: options.users,
        readShare: options.readShare,
        targets: nodes.length,
      },
      seededRandom(seed),
    );
    const send = async (request: LoadRequest): Promise<Outcome> => {
      if (request.like) this.acked.sending();
      const outcome = await targets.send(request);
      if (request.like) this.acked.answered(request.like, request.target, outcome);
      return outcome;
    };
    const load = new LoadRun({
      schedule: new OpenLoopSchedule(options.rate, undefined),
      maxInFlight: CONCURRENCY,
      next: () => workload.next(),
      send,
      clock: this.clock,
      stats,
    });

    say(
      `demo: ${nodes.map((n) => n.name).join(", ")}; ${options.rate}/s, ${options.steadyMs / 1000}s steady, ${this.cut.name} cut off for ${options.cutMs / 1000}s, then healed (seed ${seed})`,
    );
    await this.sample(); // before any load: the counters' starting point
    const startedAtEpochMs = Date.now();
    this.startedAt = this.clock.now();
    load.start();
    const ticker = setInterval(() => load.tick(), TICK_MS);
    const stepper = setInterval(() => void this.sample(), STEP_MS);
    const traces: TracedLike[] = [];
    try {
      // Phase 1: steady state, with one traced like half-way.
      await sleep(options.steadyMs / 2);
      traces.push(await this.tracedLike(others[0] ?? this.cut, "steady"));
      await this.until(this.startedAt + options.steadyMs);

      // Phase 2: the cut, both ways, from every peer; a traced like on the cut node half-way.
      await cutOff(this.cut, options.cutMs + FAULT_SAFETY_MS);
      this.cutInForce = true;
      const cutAt = this.clock.now();
      this.phase = "cut";
      say(`demo: ${this.cut.name} cut off from every peer (PUT ${this.cut.adminUrl}/faults/%2A)`);
      await sleep(options.cutMs / 2);
      traces.push(await this.tracedLike(this.cut, "cut"));
      await this.until(cutAt + options.cutMs);

      // Phase 3: heal. Converged once every node holds what any node held at the heal.
      const atHeal = await Promise.all(nodes.map((n) => clusterState(n)));
      const target = joinVectors(atHeal.map((s) => s.vv));
      await heal(this.cut);
      this.cutInForce = false;
      const healAt = this.clock.now();
      this.phase = "heal";
      say(`demo: healed (DELETE ${this.cut.adminUrl}/faults/%2A); waiting for convergence`);
      const convergeMs = await this.waitFor(healAt, async () => {
        const states = await Promise.all(nodes.map((n) => clusterState(n)));
        return states.every((s) => covers(s.vv, target));
      });
      say(
        convergeMs === null
          ? `demo: NOT converged ${options.convergeTimeoutMs / 1000}s after the heal`
          : `demo: converged ${(convergeMs / 1000).toFixed(2)}s after the heal: every node holds what any held at the heal`,
      );
      await this.until(healAt + options.afterMs);

      // Drain: stop the load, wait for its answers, then for every vector to be equal.
      load.stop();
      this.phase = "drain";
      clearInterval(ticker);
      await load.idle();
      const stoppedAt = this.clock.now();
      // Pending falls to 0 only once each peer acknowledged (the next sync's answer), after
      // the vectors are equal: settled is both.
      const settleMs = await this.waitFor(stoppedAt, async () => {
        const states = await Promise.all(nodes.map((n) => clusterState(n)));
        return states.every(
          (s) => sameVector(s.vv, states[0]?.vv ?? {}) && s.peers.every((p) => p.pending === 0),
        );
      });
      say(
        settleMs === null
          ? `demo: the version vectors still differ, or entries are still pending, ${options.convergeTimeoutMs / 1000}s after the load stopped`
          : `demo: load stopped; every version vector equal and nothing pending ${(settleMs / 1000).toFixed(2)}s later`,
      );
      clearInterval(stepper);
      await this.sampling;
      await this.sample();
      const endedAtEpochMs = Date.now();

      say(
        `demo: reading ${this.acked.distinct} acknowledged likes back from ${nodes.length} nodes`,
      );
      const missing = await this.readBack();
      const loadSummary = summarize(stats, {
        urls: nodes.map((n) => n.url),
        rate: options.rate,
        seed,
        sendingMs: load.sendingMs,
      });
      return scenarioSummary({
        options,
        nodes,
        seed,
        startedCluster: this.input.startedCluster,
        cutNode: this.cut.name,
        acked: this.acked,
        steps: this.steps,
        startedAtEpochMs,
        endedAtEpochMs,
        convergeMs,
        settleMs,
        missing,
        traces,
        loadSummary,
        sendingMs: load.sendingMs,
      });
    } finally {
      clearInterval(ticker);
      clearInterval(stepper);
      load.stop();
      targets.close();
    }
  }

  /** Clears the cut of an interrupted run (the fault's own expiry is the fallback). */
  async clearCut(): Promise<void> {
    if (this.cutInForce) await heal(this.cut);
    this.cutInForce = false;
  }

  private until(atMs: number): Promise<void> {
    return sleep(atMs - this.clock.now());
  }

  /**
   * ms from `since` until `check` holds, or null past the convergence deadline. A node that
   * fails to answer one poll is polled again; one that never answers fails the run.
   */
  private async waitFor(since: number, check: () => Promise<boolean>): Promise<number | null> {
    const deadline = since + this.input.options.convergeTimeoutMs;
    for (;;) {
      let failure: unknown;
      try {
        if (await check()) return this.clock.now() - since;
      } catch (error) {
        failure = error;
      }
      if (this.clock.now() > deadline) {
        if (failure)
          throw failure instanceof Error ? failure : new DemoError(JSON.stringify(failure));
        return null;
      }
      await sleep(POLL_MS);
    }
  }

  /** One step: every node's /metrics, one line. Steps never overlap. */
  private sample(): Promise<void> {
    if (this.sampling) return this.sampling;
    const nodes = this.input.nodes;
    this.sampling = Promise.all(
      nodes.map(async (n) => ({
        name: n.name,
        metrics: await metricsOf(n).catch(() => undefined),
      })),
    )
      .then((read) => {
        const elapsed = this.startedAt === 0 ? 0 : this.clock.now() - this.startedAt;
        this.input.say(this.steps.record(elapsed, this.phase, this.acked.acknowledged, read));
      })
      .finally(() => (this.sampling = undefined));
    return this.sampling;
  }

  /** A like sent with a sampled traceparent, so its trace exists whatever the sampler's rate. */
  private async tracedLike(node: DemoNode, phase: Phase): Promise<TracedLike> {
    const traceId = randomBytes(16).toString("hex");
    const like = { post: "demo-traced", user: `${phase}-${traceId.slice(0, 8)}` };
    const target = this.input.nodes.indexOf(node);
    this.acked.sending();
    let outcome: Outcome;
    try {
      const res = await fetch(`${node.url}/like`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-01`,
        },
        body: JSON.stringify(like),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      await res.arrayBuffer();
      outcome = { status: res.status };
    } catch (error) {
      outcome = { error: String(error) };
    }
    this.acked.answered(like, target, outcome);
    const status = "status" in outcome ? outcome.status : null;
    this.input.say(
      `demo: traced like ${like.post}/${like.user} on ${node.name} answered ${"status" in outcome ? outcome.status : outcome.error}, trace ${traceId}`,
    );
    return { phase, node: node.name, ...like, traceId, status };
  }

  /** Each node's count of acknowledged likes it lacks; and the likes some node lacks. */
  private async readBack(): Promise<{ byNode: number[]; lost: number; checked: number }> {
    const nodes = this.input.nodes;
    const posts = [...this.acked.posts()];
    const byNode = nodes.map(() => 0);
    const lostPairs = new Set<string>();
    let next = 0;
    let checked = 0;
    const worker = async () => {
      for (;;) {
        const i = next++;
        const entry = posts[i];
        if (!entry) return;
        const [post, users] = entry;
        await Promise.all(
          nodes.map(async (node, n) => {
            const held = await usersOf(node, post);
            for (const user of users) {
              checked++;
              if (held.has(user)) continue;
              byNode[n] = (byNode[n] ?? 0) + 1;
              lostPairs.add(JSON.stringify([post, user]));
            }
          }),
        );
      }
    };
    await Promise.all(Array.from({ length: READ_BACK_PARALLEL }, worker));
    return { byNode, lost: lostPairs.size, checked };
  }
}
