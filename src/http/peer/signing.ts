// The authentication of the peer port: every request and reply carries an HMAC-SHA256, under the
// cluster secret, of its method, path, timestamp and body.
import { createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";

export const SIGNATURE_HEADER = "x-likes-signature";
export const TIMESTAMP_HEADER = "x-likes-timestamp";
/** A request older or newer than this is refused: a replay inside it is harmless (idempotent). */
export const MAX_SKEW_MS = 30_000;

/** HMAC-SHA256 over method, path, timestamp and body, hex-encoded. */
export function sign(
  secret: string,
  method: string,
  path: string,
  timestamp: string,
  body: Buffer,
): string {
  return createHmac("sha256", secret)
    .update(`${method}\n${path}\n${timestamp}\n`)
    .update(body)
    .digest("hex");
}

export type Verdict = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export function verify(
  secret: string,
  method: string,
  path: string,
  headers: { timestamp: string | undefined; signature: string | undefined },
  body: Buffer,
  now: number,
): Verdict {
  const { timestamp, signature } = headers;
  if (timestamp === undefined || signature === undefined) return { ok: false, reason: "unsigned" };
  if (!/^\d{1,16}$/.test(timestamp)) return { ok: false, reason: "bad timestamp" };
  if (Math.abs(now - Number(timestamp)) > MAX_SKEW_MS) return { ok: false, reason: "stale" };
  const expected = Buffer.from(sign(secret, method, path, timestamp, body), "hex");
  const given = /^[0-9a-f]{64}$/.test(signature) ? Buffer.from(signature, "hex") : Buffer.alloc(0);
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { ok: false, reason: "forged" };
  return { ok: true };
}

/** The signature headers of a request or reply; a repeated header counts as missing. */
export function signatureOf(headers: IncomingHttpHeaders): {
  timestamp: string | undefined;
  signature: string | undefined;
} {
  const one = (value: string | string[] | undefined) => (Array.isArray(value) ? undefined : value);
  return { timestamp: one(headers[TIMESTAMP_HEADER]), signature: one(headers[SIGNATURE_HEADER]) };
}
