// Peer requests as a peer that holds the secret (or a given one) would sign them: for tests
// that play a buggy, hostile or skewed peer against a real node's peer port.
import { sign } from "../../src/http/peer/signing.js";
import { binaryCodec } from "../../src/replication/codec.js";
import { TEST_SECRET } from "./cluster.js";

/** The signature headers of a POST to `path` with `body`, `skewMs` away from this clock. */
export function signed(
  path: string,
  body: Buffer,
  { secret = TEST_SECRET, skewMs = 0 } = {},
): Record<string, string> {
  const timestamp = String(Date.now() + skewMs);
  return {
    "x-likes-timestamp": timestamp,
    "x-likes-signature": sign(secret, "POST", path, timestamp, body),
  };
}

/** POSTs a signed peer message to a node's peer port on 127.0.0.1. */
export function postToPeer(
  port: number | undefined,
  path: string,
  body: Buffer,
  options: { secret?: string; skewMs?: number } = {},
): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}${path}`, {
    method: "POST",
    headers: { "content-type": binaryCodec.contentType, ...signed(path, body, options) },
    body,
  });
}
