// A node's start before its store is open: the data directory taken, the public and admin ports
// open (alive, not ready, with the reason and the metrics), and, for an empty data directory,
// the snapshot bootstrap (README, "Snapshot bootstrap"). The node then takes over the ports.
import type { RequestListener } from "node:http";
import type { Config, PeerAddress } from "./config.js";
import { startingListener } from "./http/starting.js";
import type { PlainHandler } from "./http/plain-reply.js";
import { HttpServer } from "./http/server.js";
import { LinkTransport } from "./link/client.js";
import { originId } from "./crdt/index.js";
import { binaryCodec } from "./replication/codec.js";
import { DnsMembership, localAddresses } from "./replication/dns-membership.js";
import { systemClock } from "./replication/ports.js";
import {
  bootstrapFromSnapshot,
  type BootstrapOutcome,
  type BootstrapProgress,
} from "./replication/snapshot-bootstrap.js";
import { DataDirectory, SnapshotDownload } from "./store/index.js";
import { randomIncarnation } from "./store/incarnation.js";
import type { PromMetrics } from "./telemetry/metrics.js";
import type { Logger } from "./telemetry/types.js";

/**
 * A snapshot's begin waits for the peer to copy and hash its store (seconds at millions of
 * likes); a chunk takes milliseconds. One bound for both, well above the first.
 */
const BOOTSTRAP_REQUEST_TIMEOUT_MS = 60_000;

/** A port whose listener is replaced once the node is ready to serve it. */
class Port {
  private listener: RequestListener;
  readonly server: HttpServer;
  port = 0;

  constructor(initial: RequestListener, methods: readonly string[]) {
    this.listener = initial;
    this.server = new HttpServer((req, res) => this.listener(req, res), methods);
  }

  /** Serves with `listener`, and plain requests of new connections with `plain` (lean-connection.ts). */
  serve(listener: RequestListener, plain?: PlainHandler): void {
    this.listener = listener;
    this.server.servePlain(plain);
  }
}

export class Starting {
  /** Why the node is not ready, while it starts. */
  private reason = "the node is starting";
  /** The directory until the store takes it (then the store releases it). */
  private owned = true;
  /** What the bootstrap installed, if it did. */
  snapshot: Extract<BootstrapOutcome, { installed: true }> | undefined;

  private constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    readonly metrics: PromMetrics,
    private readonly dir: DataDirectory,
    readonly publicPort: Port,
    readonly adminPort: Port,
  ) {}

  /** Takes the data directory, then opens the public and admin ports. */
  static async listen(config: Config, logger: Logger, metrics: PromMetrics): Promise<Starting> {
    const dir = DataDirectory.open(config.dataDir);
    let reason = (): string => "the node is starting";
    const publicPort = new Port(startingListener({ reason: () => reason(), logger }), [
      "GET",
      "HEAD",
      "POST",
    ]);
    const adminPort = new Port(
      startingListener({
        reason: () => reason(),
        metrics: (accept) => metrics.render(accept),
        logger,
      }),
      config.faults ? ["GET", "HEAD", "PUT", "DELETE"] : ["GET", "HEAD"],
    );
    const starting = new Starting(config, logger, metrics, dir, publicPort, adminPort);
    reason = () => starting.reason;
    try {
      adminPort.port = await adminPort.server.listen(config.adminPort, config.host);
      publicPort.port = await publicPort.server.listen(config.httpPort, config.host);
    } catch (error) {
      await starting.close();
      throw error;
    }
    // Before a snapshot bootstrap, which may take a while: where /readyz and /metrics answer
    // meanwhile (with port 0, nowhere else to learn it).
    logger.info("ports open; starting", {
      host: config.host,
      http: publicPort.port,
      admin: adminPort.port,
    });
    return starting;
  }

  /** The data directory, for the store to open: from now on the store releases it. */
  get directory(): DataDirectory {
    this.owned = false;
    return this.dir;
  }

  /**
   * For an empty data directory with peers (or one whose database holds no like): a snapshot
   * from the first peer that holds more than LIKES_SNAPSHOT_THRESHOLD entries, installed;
   * otherwise nothing (the node catches up by anti-entropy). Never throws for a peer's fault.
   * `stop` aborted (the node is told to stop): its links close, so that what it awaits fails at
   * once, a snapshot being read is abandoned (its download removed), and it returns.
   */
  async bootstrap(stop?: AbortSignal): Promise<void> {
    const { config, logger } = this;
    if (config.clusterSecret === undefined || config.snapshotThreshold === undefined) return;
    if (stop?.aborted) return;
    // A directory whose database holds no like (a node that started before its peers could
    // answer it, and never took one) is as good as empty: it may take a snapshot too.
    if (!this.dir.holdsNoLikes()) return;
    const peers = await this.peers();
    if (peers.length === 0 || stop?.aborted) return;
    if (!this.dir.isEmpty) {
      this.dir.discardDatabase();
      logger.info("the data directory's database holds no likes: removed, as a new node's", {
        dataDir: this.dir.path,
      });
    }
    this.reason = "the node is looking for a peer to install a snapshot from";
    const transport = new LinkTransport(
      config.clusterSecret,
      config.nodeName,
      binaryCodec,
      this.metrics,
      undefined,
      BOOTSTRAP_REQUEST_TIMEOUT_MS,
    );
    const probe = new LinkTransport(
      config.clusterSecret,
      config.nodeName,
      binaryCodec,
      this.metrics,
    );
    const endLinks = () => {
      transport.close();
      probe.close();
    };
    stop?.addEventListener("abort", endLinks);
    try {
      const outcome = await bootstrapFromSnapshot({
        transport,
        probe,
        peers,
        // Its own origin comes with its store; the requests need one, used for nothing else.
        self: { node: config.nodeName, origin: originId(config.nodeName, randomIncarnation()) },
        threshold: config.snapshotThreshold,
        open: (promised) => SnapshotDownload.start(this.dir.path, promised),
        clock: systemClock,
        logger,
        metrics: this.metrics,
        progress: (p) => (this.reason = installing(p)),
        ...(stop ? { stop } : {}),
      });
      if (outcome.installed) this.snapshot = outcome;
    } finally {
      stop?.removeEventListener("abort", endLinks);
      endLinks();
      this.reason = stop?.aborted ? "the node is stopping" : "the node is starting";
    }
  }

  /** The node took over both ports. */
  done(): void {
    this.reason = "the node is stopping";
  }

  /**
   * Closes both ports (answering what they read); releases the directory if still held. The
   * default deadline is for a start that failed or was stopped: with the span flush (1 s) after
   * it, it leaves main.ts's 5 s exit deadline a second of margin.
   */
  async close(deadlineMs = 3000): Promise<void> {
    this.reason = "the node is stopping";
    await Promise.all([
      this.publicPort.server.close(deadlineMs),
      this.adminPort.server.close(deadlineMs),
    ]);
    if (this.owned) this.dir.abandon();
  }

  private async peers(): Promise<readonly PeerAddress[]> {
    const { config, logger } = this;
    if (config.peerDns === undefined) return config.peers;
    const dns = new DnsMembership(
      config.peerDns,
      config.peerPort,
      logger,
      localAddresses(config.podIp),
    );
    await dns.refresh();
    return dns.peers();
  }
}

function installing(p: BootstrapProgress): string {
  const percent = Math.floor((100 * p.received) / p.bytes);
  return `installing a snapshot from ${p.peer}: ${p.received} of ${p.bytes} bytes (${percent}%)`;
}
