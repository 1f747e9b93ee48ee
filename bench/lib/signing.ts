// The authentication of peer protocol v2 (HTTP), kept for bench/transports.ts to measure the
// link against: every request and reply carried an HMAC-SHA256, under the cluster secret, of its
// method, path, timestamp and body.
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

/** The signature headers of a request or reply; a repeated header counts as missing. */
export interface SignatureHeaders {
  readonly timestamp: string | undefined;
  readonly signature: string | undefined;
}

const OK: Verdict = { ok: true };

/** What can be checked before the body is read: both headers present, well formed, fresh. */
export function verifyHead({ timestamp, signature }: SignatureHeaders, now: number): Verdict {
  if (timestamp === undefined || signature === undefined) return { ok: false, reason: "unsigned" };
  if (!/^\d{1,16}$/.test(timestamp)) return { ok: false, reason: "bad timestamp" };
  if (!/^[0-9a-f]{64}$/.test(signature)) return { ok: false, reason: "bad signature" };
  if (Math.abs(now - Number(timestamp)) > MAX_SKEW_MS) return { ok: false, reason: "stale" };
  return OK;
}

/** The whole check: the head, then the HMAC over the body. */
export function verify(
  secret: string,
  method: string,
  path: string,
  headers: SignatureHeaders,
  body: Buffer,
  now: number,
): Verdict {
  const head = verifyHead(headers, now);
  if (!head.ok) return head;
  const expected = Buffer.from(
    sign(secret, method, path, headers.timestamp as string, body),
    "hex",
  );
  const given = Buffer.from(headers.signature as string, "hex");
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { ok: false, reason: "forged" };
  return OK;
}

export function signatureOf(headers: IncomingHttpHeaders): SignatureHeaders {
  const one = (value: string | string[] | undefined) => (Array.isArray(value) ? undefined : value);
  return { timestamp: one(headers[TIMESTAMP_HEADER]), signature: one(headers[SIGNATURE_HEADER]) };
}
