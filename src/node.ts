import type { Config } from "./config.js";
import { createPublicApp } from "./http/public-app.js";
import { HttpServer } from "./http/server.js";
import { SqliteStore, type Store } from "./store/index.js";
import type { Logger } from "./telemetry/types.js";

export interface NodePorts {
  readonly http: number;
}

/** The composition root: one likes node built from a config, with start and stop. */
export class LikesNode {
  private ready = false;

  private constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    readonly store: Store,
    private readonly publicServer: HttpServer,
    readonly ports: NodePorts,
  ) {}

  static async start(config: Config, logger: Logger): Promise<LikesNode> {
    const store = SqliteStore.open({
      dataDir: config.dataDir,
      nodeName: config.nodeName,
      fsync: config.fsync,
    });
    let node: LikesNode | undefined;
    const app = createPublicApp({
      nodeName: config.nodeName,
      origin: store.origin,
      store,
      write: async (like) => {
        const result = await store.accept(like, Date.now());
        return { isNew: result.isNew, acks: 1, required: 1 };
      },
      peerCount: () => 0,
      isReady: () => node?.ready ?? false,
      logger,
    });
    const publicServer = new HttpServer(app);
    try {
      const http = await publicServer.listen(config.httpPort, config.host);
      node = new LikesNode(config, logger, store, publicServer, { http });
    } catch (error) {
      await store.close();
      throw error;
    }
    node.ready = true;
    logger.info("listening", {
      node: config.nodeName,
      origin: store.origin,
      host: config.host,
      ...node.ports,
    });
    return node;
  }

  /** Stops accepting, lets in-flight requests finish, commits and closes the store. */
  async stop(deadlineMs = 4000): Promise<void> {
    this.ready = false;
    await this.publicServer.close(deadlineMs);
    await this.store.close();
    this.logger.info("stopped", { node: this.config.nodeName });
  }
}
