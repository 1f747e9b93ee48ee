// HTTP servers a test file starts as stand-ins, closed after each of its tests.
import type { Server } from "node:http";
import { afterEach } from "vitest";

/** A list to put the file's servers in: after each test, their connections cut and each closed. */
export function serversClosedAfterEach(): Server[] {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
  return servers;
}
