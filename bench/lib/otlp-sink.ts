import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** An OTLP/HTTP endpoint that accepts and discards: tracing pays its full export cost. */
export async function startOtlpSink(): Promise<{
  endpoint: string;
  close(): Promise<void>;
}> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/x-protobuf" });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
