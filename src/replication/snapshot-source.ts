// The serving end of a snapshot bootstrap: answers snapshot-begin with a consistent copy of the
// store (made only when this node holds at least what the caller asks for), snapshot-chunk with
// its bytes, and snapshot-end with its checksum and soundness, checked while the chunks were
// read. Copies take disk: at most MAX_SERVING at a time, each removed once its end is answered,
// when its caller goes quiet for IDLE_MS, or when the node stops.
import type { Digest } from "../crdt/index.js";
import type { CopyVerdict } from "../store/index.js";
import type { Logger, Metrics } from "../telemetry/types.js";
import type { Clock, Timer } from "./ports.js";
import { RefusalLog } from "./limits.js";
import {
  MAX_PROBLEM_BYTES,
  MAX_SNAPSHOT_CHUNK,
  MalformedMessageError,
  type Sender,
  type SnapshotBeginReply,
  type SnapshotBeginRequest,
  type SnapshotChunkReply,
  type SnapshotChunkRequest,
  type SnapshotEndReply,
  type SnapshotEndRequest,
  type SnapshotReply,
  type SnapshotRequest,
} from "./protocol.js";

/** A copy being served: what the store's snapshot (store/snapshot.ts) provides. */
export interface ServedSnapshot {
  readonly bytes: number;
  /** The check of the copy, begun when it was made. */
  readonly verdict: Promise<CopyVerdict>;
  readonly vv: Digest;
  readonly entryCount: number;
  read(offset: number, length: number): Promise<Buffer>;
  remove(): Promise<void>;
}

/** Snapshots served at once: each is a copy of the whole store on this node's disk. */
export const MAX_SERVING = 2;
/** A copy nobody asked a chunk of for this long is removed (its caller gave up or died). */
export const IDLE_MS = 30_000;

/** A chunk asked of a snapshot this node does not serve (any more): the caller starts again. */
export class SnapshotGoneError extends Error {
  override readonly name = "SnapshotGoneError";
}

export interface SnapshotSourceDeps {
  readonly self: Sender;
  /** Entries this node holds now (the sum of its vector). */
  readonly entries: () => number;
  /** Makes a consistent copy of the store; `signal` aborts it, leaving nothing behind. */
  readonly make: (signal: AbortSignal) => Promise<ServedSnapshot>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Pick<Metrics, "snapshotBytes" | "snapshotEnded">;
}

interface Serving {
  readonly snapshot: ServedSnapshot;
  readonly caller: string;
  readonly startedAt: number;
  sent: number;
  reading: number;
  idle: Timer | undefined;
}

export class SnapshotSource {
  private readonly serving = new Map<number, Serving>();
  /** Copies being made, each with what aborts it: they count against MAX_SERVING too. */
  private readonly making = new Map<AbortController, Promise<unknown>>();
  private nextId = 1;
  private stopped = false;
  /** A caller refused for want of room is told in the log once a minute, not per request. */
  private readonly busy: RefusalLog;

  constructor(private readonly deps: SnapshotSourceDeps) {
    this.busy = new RefusalLog(
      () => deps.clock.now(),
      (message, fields) => deps.logger.warn(message, fields),
      60_000,
      "snapshot refused: serving as many as allowed",
    );
  }

  answer(request: SnapshotRequest): Promise<SnapshotReply> {
    switch (request.kind) {
      case "snapshot-begin":
        return this.begin(request);
      case "snapshot-chunk":
        return this.chunk(request);
      case "snapshot-end":
        return this.finish(request);
    }
  }

  /**
   * Removes every copy (the node is stopping): those being made are aborted, and their files
   * are gone when this resolves, as those being served are.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const controller of this.making.keys()) controller.abort();
    await Promise.all(this.making.values());
    await Promise.all([...this.serving.keys()].map((id) => this.end(id, "failed")));
  }

  private async begin(request: SnapshotBeginRequest): Promise<SnapshotBeginReply> {
    const { self } = this.deps;
    const held = this.deps.entries();
    const none = { kind: "snapshot-begin-reply", ...self, id: 0, bytes: 0 } as const;
    const noSnapshot = { ...none, entryCount: held, vv: new Map() };
    if (held < request.minEntries) return noSnapshot;
    if (this.stopped) return noSnapshot;
    if (this.serving.size + this.making.size >= MAX_SERVING) {
      const serving = this.serving.size + this.making.size;
      this.busy.refused(request.node, new Error(`serving ${serving} snapshots already`), "busy");
      return noSnapshot;
    }
    const controller = new AbortController();
    // Tracked until the copy is served or removed: stop() waits for that, not only the make.
    const begun = this.make(request, controller.signal, noSnapshot);
    this.making.set(
      controller,
      begun.catch(() => undefined),
    );
    try {
      return await begun;
    } finally {
      this.making.delete(controller);
    }
  }

  /** Makes a copy and serves it; or removes it, when the node stopped meanwhile. */
  private async make(
    request: SnapshotBeginRequest,
    signal: AbortSignal,
    noSnapshot: SnapshotBeginReply,
  ): Promise<SnapshotBeginReply> {
    const { logger } = this.deps;
    const startedAt = this.deps.clock.now();
    let snapshot: ServedSnapshot;
    try {
      snapshot = await this.deps.make(signal);
    } catch (error) {
      this.deps.metrics.snapshotEnded("serve", "failed", 0);
      if (signal.aborted) {
        logger.info("snapshot not made: the node is stopping", { caller: request.node });
        return noSnapshot;
      }
      logger.error("could not make a snapshot", { caller: request.node, error: String(error) });
      throw error;
    }
    if (this.stopped) {
      await snapshot.remove();
      return noSnapshot;
    }
    const id = this.nextId++;
    this.serving.set(id, {
      snapshot,
      caller: request.node,
      startedAt,
      sent: 0,
      reading: 0,
      idle: undefined,
    });
    this.touch(id);
    logger.info("serving a snapshot", {
      caller: request.node,
      id,
      bytes: snapshot.bytes,
      entries: snapshot.entryCount,
      ms: this.deps.clock.now() - startedAt,
    });
    return {
      ...noSnapshot,
      id,
      bytes: snapshot.bytes,
      entryCount: snapshot.entryCount,
      vv: snapshot.vv,
    };
  }

  private async chunk(request: SnapshotChunkRequest): Promise<SnapshotChunkReply> {
    const serving = this.serving.get(request.id);
    if (!serving) throw new SnapshotGoneError(`no snapshot ${request.id} is served here`);
    const { snapshot } = serving;
    if (request.offset >= snapshot.bytes)
      throw new MalformedMessageError(
        `offset ${request.offset} is past the snapshot's ${snapshot.bytes} bytes`,
      );
    this.touch(request.id);
    serving.reading++;
    let data: Buffer;
    try {
      data = await snapshot.read(request.offset, MAX_SNAPSHOT_CHUNK);
    } finally {
      serving.reading--;
    }
    serving.sent += data.length;
    this.deps.metrics.snapshotBytes("out", data.length);
    return {
      kind: "snapshot-chunk-reply",
      ...this.deps.self,
      id: request.id,
      offset: request.offset,
      data,
    };
  }

  /** The copy's checksum and soundness, once checked; then the copy is removed. */
  private async finish(request: SnapshotEndRequest): Promise<SnapshotEndReply> {
    const serving = this.serving.get(request.id);
    if (!serving) throw new SnapshotGoneError(`no snapshot ${request.id} is served here`);
    this.touch(request.id);
    serving.reading++;
    let verdict: CopyVerdict;
    try {
      verdict = await serving.snapshot.verdict;
    } catch (error) {
      this.deps.logger.error("could not check a served snapshot", {
        caller: serving.caller,
        id: request.id,
        error: String(error),
      });
      await this.end(request.id, "failed");
      throw error;
    } finally {
      serving.reading--;
    }
    const problem = describeProblems(verdict.problems);
    if (problem)
      this.deps.logger.error("a served snapshot failed its check: this node's store is damaged", {
        caller: serving.caller,
        id: request.id,
        problems: verdict.problems.slice(0, 10),
      });
    await this.end(request.id, problem ? "failed" : "ok");
    return {
      kind: "snapshot-end-reply",
      ...this.deps.self,
      id: request.id,
      checksum: verdict.checksum,
      problem,
    };
  }

  private touch(id: number): void {
    const serving = this.serving.get(id);
    if (!serving) return;
    serving.idle?.cancel();
    serving.idle = this.deps.clock.setTimeout(() => {
      if (serving.reading > 0) return this.touch(id);
      this.deps.logger.warn("snapshot abandoned by its caller; removed", {
        caller: serving.caller,
        id,
        sent: serving.sent,
      });
      void this.end(id, "failed");
    }, IDLE_MS);
  }

  private async end(id: number, result: "ok" | "failed"): Promise<void> {
    const serving = this.serving.get(id);
    if (!serving) return;
    this.serving.delete(id);
    serving.idle?.cancel();
    this.deps.metrics.snapshotEnded(
      "serve",
      result,
      (this.deps.clock.now() - serving.startedAt) / 1000,
    );
    try {
      await serving.snapshot.remove();
    } catch (error) {
      this.deps.logger.warn("could not remove a served snapshot", { id, error: String(error) });
    }
  }
}

/** Problems as one line of printable ASCII of at most MAX_PROBLEM_BYTES; empty for none. */
export function describeProblems(problems: readonly string[]): string {
  if (problems.length === 0) return "";
  const line = problems.join("; ").replace(/[^\x20-\x7e]/g, "?");
  return line.length > MAX_PROBLEM_BYTES ? `${line.slice(0, MAX_PROBLEM_BYTES - 3)}...` : line;
}
