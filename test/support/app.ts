import type { AddressInfo } from "node:net";
import { createServer, type Server } from "node:http";
import type { NodeName } from "../../src/crdt/index.js";
import { createPublicApp, type PublicAppOptions } from "../../src/http/public-app.js";
import { HttpServer } from "../../src/http/server.js";
import { MemoryStore } from "../../src/store/index.js";
import { silentLogger } from "../../src/telemetry/types.js";

export interface AppOptions extends PublicAppOptions {
  /** Serve through the node's own server, plain requests read without node:http, as a node does. */
  readonly lean?: boolean;
}

/** The public app over a memory store, listening on an ephemeral loopback port. */
export async function startApp(options?: AppOptions): Promise<{
  url: string;
  store: MemoryStore;
  close(): Promise<void>;
}> {
  const store = MemoryStore.open("test-node" as NodeName);
  const app = createPublicApp(
    {
      nodeName: store.nodeName,
      origin: store.origin,
      store,
      write: async (like) => {
        const result = await store.accept(like, Date.now());
        return { isNew: result.isNew, acks: 1, required: 1 };
      },
      peerCount: () => 0,
      notReady: () => undefined,
      logger: silentLogger,
    },
    options,
  );
  if (options?.lean) {
    const server = new HttpServer(app.listener);
    server.servePlain(app.plain);
    const port = await server.listen(0, "127.0.0.1");
    return {
      url: `http://127.0.0.1:${port}`,
      store,
      close: async () => {
        await server.close(0);
        await store.close();
      },
    };
  }
  const server: Server = createServer(app.listener);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    store,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await store.close();
    },
  };
}

/** Everything observable about a store's contents, to prove a request changed nothing. */
export function snapshot(store: MemoryStore): string {
  return JSON.stringify({ size: store.setSize(), digest: [...store.digest()] });
}
