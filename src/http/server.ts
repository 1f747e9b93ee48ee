// The HTTP servers of a node (public, peer and admin ports), with a graceful close.
import { createServer, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** An HTTP server that can be stopped gracefully: stop accepting, let in-flight requests end. */
export class HttpServer {
  private readonly server: Server;

  constructor(listener: RequestListener) {
    this.server = createServer(listener);
    // Slow or stalled clients must not pin a connection forever.
    this.server.requestTimeout = 30_000;
    this.server.headersTimeout = 10_000;
    this.server.keepAliveTimeout = 5_000;
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  /** Resolves once every connection has ended; connections still busy at `deadlineMs` are cut. */
  close(deadlineMs: number): Promise<void> {
    if (!this.server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      const idle = setInterval(() => this.server.closeIdleConnections(), 50);
      const cut = setTimeout(() => this.server.closeAllConnections(), deadlineMs);
      this.server.close(() => {
        clearInterval(idle);
        clearTimeout(cut);
        resolve();
      });
      this.server.closeIdleConnections();
    });
  }
}
