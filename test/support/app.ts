import type { AddressInfo } from "node:net";
import { createServer, type Server } from "node:http";
import type { NodeName } from "../../src/crdt/index.js";
import { createPublicApp, type PublicAppOptions } from "../../src/http/public-app.js";
import { MemoryStore } from "../../src/store/index.js";
import { silentLogger } from "../../src/telemetry/types.js";

/** The public app over a memory store, listening on an ephemeral loopback port. */
export async function startApp(options?: PublicAppOptions): Promise<{
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
  const server: Server = createServer(app);
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
