// The handshake that opens a peer link: a mutual challenge–response over fresh random nonces from
// both ends, keyed by LIKES_CLUSTER_SECRET. Neither the secret nor a proof that could be used
// again crosses the wire, and no clock is read: each proof covers both nonces, and the frames
// after it are sealed under a key derived from them (frames.ts).
//
//   client → server  hello  = "LIKES" version:u8 nonce:32 time:u64 node
//   server → client  answer = "LIKES" version:u8 nonce:32 proof:32 time:u64 node
//   client → server  proof:32
//
// `time` is the sender's wall clock (ms): it authenticates nothing, and only shows how far apart
// the two clocks are (likes_peer_clock_skew_seconds). `node` is the sender's name, in ASCII.
//
// proof = HMAC-SHA256(secret, label ‖ client nonce ‖ server nonce), with a label per role, so
// that a server's proof is never a client's; key = the same with the label "key".
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { isNodeName } from "../crdt/index.js";

/**
 * 7: a push's answer may carry the answering node's own entries (a ride) and a push the `acks`
 * of one; 6 had neither. 6: entries' `ts` relative to the message's; 5 counted them from 0 in
 * every message; 4 named every node and origin in full; 3 tagged frames with HMAC-SHA256 (now
 * GMAC, frames.ts).
 */
export const LINK_VERSION = 7;
const MAGIC = Buffer.from("LIKES", "latin1");
export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;
/** The handshake's frames are small: a node name is at most 63 bytes. */
export const MAX_HANDSHAKE_FRAME = 160;
/** A connection that has not proved itself within this long is closed. */
export const HANDSHAKE_TIMEOUT_MS = 5_000;

/** A handshake that fails: the link is closed before any frame of it is read. */
export class HandshakeError extends Error {
  override readonly name = "HandshakeError";
  constructor(
    message: string,
    /** A short, stable reason for logs and metrics. */
    readonly reason: "wrong secret" | "protocol version" | "malformed",
  ) {
    super(message);
  }
}

export interface Greeting {
  readonly version: number;
  readonly nonce: Buffer;
  readonly time: number;
  readonly node: string;
}

function timeBytes(now: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(now))));
  return bytes;
}

export function freshNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

export function encodeHello(nonce: Buffer, node: string, now = Date.now()): Buffer {
  return Buffer.concat([
    MAGIC,
    Buffer.of(LINK_VERSION),
    nonce,
    timeBytes(now),
    Buffer.from(node, "latin1"),
  ]);
}

export function encodeAnswer(nonce: Buffer, proof: Buffer, node: string, now = Date.now()): Buffer {
  return Buffer.concat([
    MAGIC,
    Buffer.of(LINK_VERSION),
    nonce,
    proof,
    timeBytes(now),
    Buffer.from(node, "latin1"),
  ]);
}

/** Reads a hello (`proofBytes` 0) or an answer (PROOF_BYTES); throws HandshakeError. */
export function decodeGreeting(
  body: Buffer,
  proofBytes: number,
): Greeting & { readonly proof: Buffer } {
  const fixed = MAGIC.length + 1 + NONCE_BYTES + proofBytes + 8;
  if (body.length < fixed + 1 || !body.subarray(0, MAGIC.length).equals(MAGIC))
    throw new HandshakeError("not a likes peer link handshake", "malformed");
  const version = body[MAGIC.length] as number;
  if (version !== LINK_VERSION)
    throw new HandshakeError(
      `the peer speaks link version ${version}; this node speaks ${LINK_VERSION}`,
      "protocol version",
    );
  const nonceAt = MAGIC.length + 1;
  const node = body.toString("latin1", fixed);
  if (!isNodeName(node))
    throw new HandshakeError("a handshake with an invalid node name", "malformed");
  return {
    version,
    nonce: body.subarray(nonceAt, nonceAt + NONCE_BYTES),
    proof: body.subarray(nonceAt + NONCE_BYTES, fixed - 8),
    time: Number(body.readBigUInt64BE(fixed - 8)),
    node,
  };
}

type Label = "server" | "client" | "key";

function mac(secret: string, label: Label, clientNonce: Buffer, serverNonce: Buffer): Buffer {
  return createHmac("sha256", secret)
    .update(`likes peer link v${LINK_VERSION} ${label}\n`)
    .update(clientNonce)
    .update(serverNonce)
    .digest();
}

export function proofOf(
  secret: string,
  role: "server" | "client",
  clientNonce: Buffer,
  serverNonce: Buffer,
): Buffer {
  return mac(secret, role, clientNonce, serverNonce);
}

/** True when `given` is the proof of `role` over the two nonces. */
export function proves(
  secret: string,
  role: "server" | "client",
  clientNonce: Buffer,
  serverNonce: Buffer,
  given: Buffer,
): boolean {
  const expected = proofOf(secret, role, clientNonce, serverNonce);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The key that seals this connection's frames, both ways. */
export function linkKey(secret: string, clientNonce: Buffer, serverNonce: Buffer): Buffer {
  return mac(secret, "key", clientNonce, serverNonce);
}

const HTTP_STARTS = ["POST ", "GET ", "HEAD ", "PUT ", "OPTIONS ", "DELETE ", "PATCH "];
/** Bytes enough to tell an HTTP request's start from a greeting: the longest of HTTP_STARTS. */
const HTTP_START_BYTES = 8;

/**
 * Whether a connection's first bytes are an HTTP request (a peer of protocol v2), or undefined
 * while they are too few to tell: TCP may deliver "GE" and then "T /peer/v2/deltas".
 */
export function looksLikeHttp(first: Buffer): boolean | undefined {
  const text = first.toString("latin1", 0, HTTP_START_BYTES);
  let undecided = false;
  for (const start of HTTP_STARTS) {
    if (text.startsWith(start)) return true;
    if (start.startsWith(text)) undecided = true;
  }
  return undecided ? undefined : false;
}
