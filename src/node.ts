// The composition root: one likes node (store, replication, three HTTP ports) from a config.
import { ROOT_CONTEXT, context } from "@opentelemetry/api";
import type { Config } from "./config.js";
import { nodeNameOf } from "./crdt/index.js";
import { adminListener } from "./http/admin.js";
import { createPublicApp } from "./http/public-app.js";
import { LinkTransport } from "./link/client.js";
import { LinkServer } from "./link/server.js";
import { binaryCodec } from "./replication/codec.js";
import { DnsMembership, localAddresses } from "./replication/dns-membership.js";
import { Faults } from "./replication/faults.js";
import { DEFAULT_PEER_LIMITS } from "./replication/limits.js";
import { StaticMembership, systemClock, type Membership } from "./replication/ports.js";
import { Replicator } from "./replication/replicator.js";
import { SqliteStore, type Store } from "./store/index.js";
import type { PeerGauge } from "./telemetry/gauges.js";
import { PromMetrics } from "./telemetry/metrics.js";
import { isSnapshotRequest } from "./replication/protocol.js";
import { SnapshotSource } from "./replication/snapshot-source.js";
import { Starting } from "./starting.js";
import { withServerSpans } from "./telemetry/server-spans.js";
import type { Logger } from "./telemetry/types.js";

export interface NodePorts {
  readonly http: number;
  readonly peer: number | null;
  readonly admin: number;
}

/**
 * The node was told to stop during its bootstrap: no store was opened, and what the start made
 * (a snapshot, a directory it created) is removed. Nothing is lost: it held no like yet.
 */
export class StoppedWhileStartingError extends Error {
  override readonly name = "StoppedWhileStartingError";
  constructor() {
    super("stopped while starting");
  }
}

export class LikesNode {
  private ready = false;
  /** The public and admin ports, open since before the store (starting.ts). */
  private readonly starting: Starting;
  private snapshots: SnapshotSource | undefined;
  private transport: LinkTransport | undefined;
  private linkServer: LinkServer | undefined;
  private dns: DnsMembership | undefined;
  readonly store: Store;
  private readonly sqlite: SqliteStore;
  readonly replicator: Replicator;
  readonly metrics: PromMetrics;
  /** LIKES_FAULTS=enabled: the faults the admin port's /faults injects in the peer link. */
  readonly faults: Faults | undefined;
  ports: NodePorts = { http: 0, peer: null, admin: 0 };

  private constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    /** Told when the node cannot go on (a corrupt store with LIKES_ON_CORRUPTION=refill). */
    private readonly onFatal: (reason: string) => void,
    started: Starting,
  ) {
    this.metrics = started.metrics;
    this.starting = started;
    const faults = (this.faults = config.faults
      ? new Faults(
          {
            now: () => systemClock.now(),
            // A fault's expiry belongs to no request: not to the trace of the PUT that set it.
            setTimeout: (callback, ms) =>
              systemClock.setTimeout(() => context.with(ROOT_CONTEXT, callback), ms),
          },
          Math.random,
          logger,
          () => this.replicator.faultsChanged(),
        )
      : undefined);
    const dataDir = config.dataDir;
    this.store = this.sqlite = SqliteStore.open({
      dataDir,
      directory: started.directory,
      integrityChecked: started.snapshot !== undefined,
      nodeName: config.nodeName,
      fsync: config.fsync,
      metrics: started.metrics,
      onCorruption: config.onCorruption,
      onCheckpointFailure: (error) =>
        logger.warn("background WAL checkpoints stopped; commits checkpoint again", { error }),
      onCheckpointError: (error) =>
        error === undefined
          ? logger.info("background WAL checkpoints resumed", { dataDir })
          : logger.warn("background WAL checkpoint failed; retrying", { dataDir, error }),
      onCondition: (condition, detail) => {
        if (condition === "ok") logger.info("storage writable again", { dataDir, detail });
        else if (condition === "full")
          logger.error("storage full: writes answer 503 until space is freed", { dataDir, detail });
        else {
          logger.error("storage corrupt: the node serves no more", { dataDir, detail });
          if (config.onCorruption === "refill") onFatal(detail);
        }
      },
      onMovedAside: (to, detail) =>
        logger.warn("corrupt database moved aside; starting as a new origin", { to, detail }),
    });
    let membership: Membership = new StaticMembership(config.peers);
    if (config.peerDns !== undefined)
      membership = this.dns = new DnsMembership(
        config.peerDns,
        config.peerPort,
        logger,
        localAddresses(config.podIp),
      );
    if (config.clusterSecret !== undefined)
      this.transport = new LinkTransport(
        config.clusterSecret,
        config.nodeName,
        binaryCodec,
        this.metrics,
        {
          down: (peer, error) => this.replicator.linkDown(peer, error),
          clockSkew: (peer, skewMs) => this.replicator.clockSkew(peer, skewMs),
        },
        undefined,
        faults,
      );
    this.replicator = new Replicator({
      store: this.store,
      transport: this.transport ?? {
        send: () => Promise.reject(new Error("no LIKES_CLUSTER_SECRET: this node has no peers")),
      },
      clock: systemClock,
      random: Math.random,
      membership,
      logger,
      pushMs: config.pushMs,
      syncMs: config.syncMs,
      limits: { ...DEFAULT_PEER_LIMITS, maxOrigins: config.maxOrigins },
      metrics: this.metrics,
      ...(faults
        ? {
            pushPaused: (peer: string | undefined) => faults.pushesPaused(peer),
            faulted: (peer: string | undefined) => faults.touches(peer),
          }
        : {}),
    });
  }

  /**
   * Starts a node: the public and admin ports first (not ready until the end), the data
   * directory, a snapshot bootstrap when it is empty (bootstrap.ts), then the store, the peer
   * link and replication. `stop` aborted before the store opens: the bootstrap is abandoned,
   * the ports closed, and it rejects with StoppedWhileStartingError.
   */
  static async start(
    config: Config,
    logger: Logger,
    onFatal: (reason: string) => void = () => {},
    stop?: AbortSignal,
  ): Promise<LikesNode> {
    let node: LikesNode | undefined;
    const metrics = new PromMetrics({
      ...(config.faults ? { faults: () => node?.faults?.list() ?? [] } : {}),
      setSize: () => node?.store.setSize() ?? 0,
      origins: { held: () => node?.store.digest().size ?? 0, max: config.maxOrigins },
      walBytes: () => node?.store.walBytes?.(),
      walRestarts: () => node?.store.walRestarts?.(),
      peers: () => node?.peerGauges() ?? [],
    });
    const starting = await Starting.listen(config, logger, metrics);
    try {
      await starting.bootstrap(stop);
      if (stop?.aborted) throw new StoppedWhileStartingError();
      node = new LikesNode(config, logger, onFatal, starting);
    } catch (error) {
      await starting.close();
      throw error;
    }
    try {
      await node.listen();
    } catch (error) {
      await node.stop();
      throw error;
    }
    return node;
  }

  private peerGauges(): PeerGauge[] {
    return this.replicator.view().peers.map((p) => ({
      peer: p.node ?? p.address,
      // Not yet contacted counts as up: only a failed exchange says otherwise.
      up: p.up !== false,
      pending: p.pending,
      clockSkewSeconds: p.clockSkewMs === null ? undefined : p.clockSkewMs / 1000,
      unansweredBytes: this.transport?.unanswered(p.address) ?? 0,
    }));
  }

  private async listen(): Promise<void> {
    const { config, store, replicator, logger, metrics, faults } = this;
    const app = createPublicApp({
      nodeName: config.nodeName,
      origin: store.origin,
      store,
      write: async (like, consistency) => {
        const outcome = await replicator.write(like, consistency, config.writeTimeoutMs);
        metrics.likeAccepted(outcome.isNew);
        return outcome;
      },
      metrics,
      peerCount: () => replicator.peerCount(),
      notReady: () => this.notReadyBecause(),
      logger,
    });
    let peer: number | null = null;
    if (config.clusterSecret !== undefined) {
      const snapshots = (this.snapshots = new SnapshotSource({
        self: { node: config.nodeName, origin: store.origin },
        entries: () => {
          let n = 0;
          for (const seq of store.digest().values()) n += seq;
          return n;
        },
        make: (signal) => this.sqlite.snapshot(signal),
        clock: systemClock,
        logger,
        metrics,
      }));
      this.linkServer = new LinkServer({
        secret: config.clusterSecret,
        node: config.nodeName,
        codec: binaryCodec,
        handle: (r) => (isSnapshotRequest(r) ? snapshots.answer(r) : replicator.handle(r)),
        logger,
        metrics,
        ...(faults ? { refusesFrom: (node: string) => faults.refusesFrom(node) } : {}),
      });
      peer = await this.linkServer.listen(config.peerPort, config.host);
    }
    this.starting.adminPort.serve(
      withServerSpans(
        adminListener({
          cluster: () => replicator.view(),
          metrics: (accept) => metrics.render(accept),
          logger,
          ...(faults ? { faults } : {}),
        }),
        { untraced: new Set(["/metrics"]) },
      ),
    );
    await this.dns?.start();
    replicator.start();
    this.starting.publicPort.serve(
      withServerSpans(app.listener, { untraced: new Set(["/healthz", "/readyz"]) }),
      app.plain,
    );
    this.ports = { http: this.starting.publicPort.port, peer, admin: this.starting.adminPort.port };
    this.starting.done();
    this.ready = true;
    const previous = this.sqlite.previousOrigin;
    if (faults)
      logger.warn(
        "fault injection is on (LIKES_FAULTS=enabled): anyone who reaches the admin port can partition this node",
        {
          admin: this.ports.admin,
        },
      );
    if (previous !== undefined && nodeNameOf(previous) !== config.nodeName)
      logger.warn(
        "the data directory was another node's: its likes are kept, new ones are this node's",
        {
          previous,
          origin: store.origin,
        },
      );
    const snapshot = this.starting.snapshot;
    if (snapshot)
      logger.info("snapshot installed; catching up by anti-entropy", {
        peer: snapshot.peer,
        bytes: snapshot.bytes,
        entries: snapshot.entries,
        seconds: snapshot.seconds,
        origin: store.origin,
      });
    logger.info("listening", {
      origin: store.origin,
      previous: previous ?? null,
      host: config.host,
      ...this.ports,
      peers: replicator.peerCount(),
    });
  }

  /** What /readyz says while the node must not take traffic (undefined: ready). */
  private notReadyBecause(): string | undefined {
    if (!this.ready) return "the node is starting or stopping";
    const condition = this.sqlite.condition();
    if (condition === "full")
      return `the disk of ${this.config.dataDir} is full: writes fail until space is freed`;
    if (condition === "corrupt")
      return `the database in ${this.config.dataDir} is corrupt: see the README, "Data directories"`;
    return undefined;
  }

  /**
   * Stops accepting and answers every request already read, then commits and closes the store.
   * Writers waiting for acks (`consistency`) get half the deadline; then replication stops,
   * which answers them 202 with the acks they reached, well before connections are cut. Before
   * that, what the push pace still holds goes to the peers (a quarter of the deadline at most).
   */
  async stop(deadlineMs = 4000): Promise<void> {
    this.ready = false;
    const drained = this.starting.close(deadlineMs);
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([
      drained,
      new Promise((resolve) => (grace = setTimeout(resolve, deadlineMs / 2))),
    ]);
    clearTimeout(grace);
    await this.replicator.handOff(deadlineMs / 4);
    this.replicator.stop();
    this.faults?.stop();
    await drained;
    await this.linkServer?.close();
    await this.snapshots?.stop();
    this.dns?.stop();
    this.transport?.close();
    await this.store.close();
    this.logger.info("stopped", { node: this.config.nodeName });
  }
}
