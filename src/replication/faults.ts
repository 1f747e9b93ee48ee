// Fault injection (LIKES_FAULTS=enabled only): what the admin port's /faults sets for the link to
// one peer (by node name) or to every peer (`*`), and what the peer transport and the pusher ask
// before they act. A fault only makes messages late or lost, or links refused, which the protocol
// already survives (a push that fails is sent again from what the peer acknowledged): it can never
// make a node lose or alter an acknowledged like. Pure but for its injected clock and randomness.
import { isNodeName } from "../crdt/index.js";
import type { Logger } from "../telemetry/types.js";
import type { Clock, Random, Timer } from "./ports.js";

export const FAULT_KINDS = ["delay", "drop", "cut", "pause"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
/** Who opens the links a cut refuses: `out` this node's, `in` the peer's, `both` either. */
export type CutDirection = "out" | "in" | "both";

export interface FaultSpecs {
  /** Outgoing messages wait ms + a uniform [0, jitterMs) before they are written. */
  readonly delay?: { readonly ms: number; readonly jitterMs: number };
  /** The probability that an outgoing message is dropped (its send fails). */
  readonly drop?: number;
  readonly cut?: CutDirection;
  /** This node's pushes to the peer stop: anti-entropy is the only path left. */
  readonly pause?: "pushes";
}

/** A PUT /faults/<peer> body, validated: the faults to set and how long they last. */
export interface FaultRequest {
  readonly peer: string;
  readonly specs: FaultSpecs;
  /** Milliseconds the faults last; undefined: until cleared. */
  readonly forMs: number | undefined;
}

export interface ActiveFault {
  readonly peer: string;
  readonly kind: FaultKind;
  readonly spec: unknown;
  /** When it was set and when it ends (ISO times; until null: until cleared). */
  readonly since: string;
  readonly until: string | null;
}

/** What the peer transport does to one outgoing message. */
export interface OutgoingFault {
  readonly cut: boolean;
  readonly drop: boolean;
  readonly delayMs: number;
}

const NO_FAULT: OutgoingFault = Object.freeze({ cut: false, drop: false, delayMs: 0 });

/** A body or peer name /faults refuses: answered 400 with the code. */
export class FaultInputError extends Error {
  override readonly name = "FaultInputError";
  readonly code = "invalid_fault";
}

/** The longest a delay or a fault's `for` may be. */
export const MAX_DELAY_MS = 60_000;
export const MAX_FAULT_MS = 24 * 3600_000;
const DURATION = /^(\d{1,9})(ms|s|m|h)$/;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3600_000 };

/** "500ms", "30s", "2m", "1h" in milliseconds (above zero, at most 24 h). */
export function parseDuration(text: unknown): number {
  const match = typeof text === "string" ? DURATION.exec(text) : null;
  if (!match)
    throw new FaultInputError(
      `"for" must be a duration such as "500ms", "30s", "2m" or "1h" (got ${JSON.stringify(text)})`,
    );
  const ms = Number(match[1]) * (UNIT_MS[match[2] as string] as number);
  if (ms <= 0 || ms > MAX_FAULT_MS)
    throw new FaultInputError(`"for" must be above 0 and at most 24h (got ${String(text)})`);
  return ms;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function onlyKeys(value: Record<string, unknown>, known: readonly string[], what: string): void {
  for (const key of Object.keys(value))
    if (!known.includes(key))
      throw new FaultInputError(
        `${what} has an unknown field ${JSON.stringify(key)}; known: ${known.join(", ")}`,
      );
}

function wholeMs(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_DELAY_MS)
    throw new FaultInputError(
      `${what} must be a whole number of ms from 0 to ${MAX_DELAY_MS} (got ${shown(value)})`,
    );
  return value;
}

/** The peer of /faults/<peer>: a node name or `*` (every peer). */
export function parseFaultPeer(peer: string): string {
  if (peer === "*" || isNodeName(peer)) return peer;
  throw new FaultInputError(
    `the peer must be a node name or * (got ${JSON.stringify(peer.slice(0, 80))})`,
  );
}

/** Validates a PUT /faults/<peer> body: strict, every field checked, at least one fault. */
export function parseFaultRequest(peer: string, body: unknown): FaultRequest {
  const name = parseFaultPeer(peer);
  if (!isObject(body))
    throw new FaultInputError(
      'the body must be a JSON object such as {"delay": {"ms": 200}}, {"drop": 0.3}, {"cut": "both"} or {"pause": "pushes"}',
    );
  onlyKeys(body, [...FAULT_KINDS, "for"], "the body");
  const specs: {
    delay?: FaultSpecs["delay"];
    drop?: number;
    cut?: CutDirection;
    pause?: "pushes";
  } = {};
  if (body.delay !== undefined) {
    if (!isObject(body.delay))
      throw new FaultInputError('"delay" must be an object such as {"ms": 200, "jitterMs": 50}');
    onlyKeys(body.delay, ["ms", "jitterMs"], '"delay"');
    specs.delay = {
      ms: wholeMs(body.delay.ms, '"delay.ms"'),
      jitterMs:
        body.delay.jitterMs === undefined ? 0 : wholeMs(body.delay.jitterMs, '"delay.jitterMs"'),
    };
  }
  if (body.drop !== undefined) {
    if (typeof body.drop !== "number" || !(body.drop > 0 && body.drop <= 1))
      throw new FaultInputError(
        `"drop" must be a probability above 0 and at most 1 (got ${shown(body.drop)})`,
      );
    specs.drop = body.drop;
  }
  if (body.cut !== undefined) {
    if (body.cut !== "out" && body.cut !== "in" && body.cut !== "both")
      throw new FaultInputError(
        `"cut" must be "out", "in" or "both" (got ${JSON.stringify(body.cut)})`,
      );
    specs.cut = body.cut;
  }
  if (body.pause !== undefined) {
    if (body.pause !== "pushes")
      throw new FaultInputError(`"pause" must be "pushes" (got ${JSON.stringify(body.pause)})`);
    specs.pause = body.pause;
  }
  if (Object.keys(specs).length === 0)
    throw new FaultInputError(`the body sets no fault: give one of ${FAULT_KINDS.join(", ")}`);
  return { peer: name, specs, forMs: body.for === undefined ? undefined : parseDuration(body.for) };
}

interface Held {
  readonly spec: unknown;
  readonly since: number;
  readonly until: number | undefined;
  readonly timer: Timer | undefined;
}

/** The faults in force on this node, by peer (node name or `*`) and kind. */
export class Faults {
  private readonly held = new Map<string, Map<FaultKind, Held>>();

  constructor(
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly logger: Logger,
    /** Told whenever a fault starts or ends (the pusher resumes a paused peer). */
    private readonly changed: () => void = () => {},
  ) {}

  /** Sets the faults of a request, each replacing the one of its kind for that peer. */
  set(request: FaultRequest): ActiveFault[] {
    const now = this.clock.now();
    const until = request.forMs === undefined ? undefined : now + request.forMs;
    for (const kind of FAULT_KINDS) {
      const spec = request.specs[kind];
      if (spec === undefined) continue;
      this.end(request.peer, kind, "replaced");
      const kinds = this.held.get(request.peer) ?? new Map<FaultKind, Held>();
      this.held.set(request.peer, kinds);
      const timer =
        request.forMs === undefined
          ? undefined
          : this.clock.setTimeout(() => this.end(request.peer, kind, "expired"), request.forMs);
      kinds.set(kind, { spec, since: now, until, timer });
      this.logger.warn("fault started", {
        peer: request.peer,
        kind,
        spec,
        for_ms: request.forMs ?? null,
      });
    }
    this.changed();
    return this.list().filter((f) => f.peer === request.peer);
  }

  /** Ends every fault (of one peer when given); answers how many ended. */
  clear(peer?: string): number {
    let ended = 0;
    for (const [name, kinds] of [...this.held])
      if (peer === undefined || name === peer)
        for (const kind of [...kinds.keys()]) if (this.end(name, kind, "cleared")) ended++;
    if (ended > 0) this.changed();
    return ended;
  }

  /** Cancels the expiry timers (the node is stopping); the faults end with the process. */
  stop(): void {
    for (const kinds of this.held.values()) for (const held of kinds.values()) held.timer?.cancel();
    this.held.clear();
  }

  list(): ActiveFault[] {
    const out: ActiveFault[] = [];
    for (const [peer, kinds] of this.held)
      for (const [kind, held] of kinds)
        out.push({
          peer,
          kind,
          spec: held.spec,
          since: new Date(held.since).toISOString(),
          until: held.until === undefined ? null : new Date(held.until).toISOString(),
        });
    return out.sort((a, b) => (a.peer + a.kind).localeCompare(b.peer + b.kind));
  }

  /** What happens to a message this node sends to `peer` (undefined: its name is not known yet). */
  outgoing(peer: string | undefined): OutgoingFault {
    if (this.held.size === 0) return NO_FAULT;
    const delay = this.find(peer, "delay") as FaultSpecs["delay"];
    const drop = this.find(peer, "drop") as number | undefined;
    const cut = this.find(peer, "cut") as CutDirection | undefined;
    return {
      cut: cut === "out" || cut === "both",
      drop: drop !== undefined && this.random() < drop,
      delayMs: delay ? delay.ms + Math.floor(this.random() * delay.jitterMs) : 0,
    };
  }

  /** Whether this node refuses the links `peer` opens to it (a cut "in" or "both"). */
  refusesFrom(peer: string): boolean {
    if (this.held.size === 0) return false;
    const cut = this.find(peer, "cut");
    return cut === "in" || cut === "both";
  }

  /** Whether any fault is set on what this node sends to `peer` (nothing rides to it then). */
  touches(peer: string | undefined): boolean {
    return this.held.size > 0 && FAULT_KINDS.some((kind) => this.find(peer, kind) !== undefined);
  }

  /** Whether this node's pushes to `peer` are paused. */
  pushesPaused(peer: string | undefined): boolean {
    return this.held.size > 0 && this.find(peer, "pause") !== undefined;
  }

  /** The peer's own fault of a kind, else the one set for `*`. */
  private find(peer: string | undefined, kind: FaultKind): unknown {
    const own = peer === undefined ? undefined : this.held.get(peer)?.get(kind);
    return (own ?? this.held.get("*")?.get(kind))?.spec;
  }

  private end(peer: string, kind: FaultKind, why: "expired" | "cleared" | "replaced"): boolean {
    const kinds = this.held.get(peer);
    const held = kinds?.get(kind);
    if (!kinds || !held) return false;
    held.timer?.cancel();
    kinds.delete(kind);
    if (kinds.size === 0) this.held.delete(peer);
    if (why !== "replaced") this.logger.warn("fault ended", { peer, kind, why });
    if (why === "expired") this.changed();
    return true;
  }
}

/** A value as the request had it: JSON's, but a number past JSON's range (1e400) as itself. */
function shown(value: unknown): string {
  return typeof value === "number" ? String(value) : JSON.stringify(value);
}
