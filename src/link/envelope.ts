// What a sealed frame of a peer link carries: a request, its reply, or the error that answers it,
// each tagged with the request's number on that link.
//
//   request = 1 id flags:u8 [traceparent:25] message
//             flags bit 1: a traceparent follows; bit 2: a sync whose vector is a difference
//             (crdt digestDiff) from the vector of the previous sync on this link
//   reply   = 2 id message
//   error   = 3 id code:string message:string
//
// `message` is a peer message in the binary codec (replication/codec.ts), checked whole by its
// decoder before anything is applied.
import { MalformedMessageError } from "../replication/protocol.js";
import { WireReader, WireWriter } from "../replication/wire.js";

const REQUEST = 1;
const REPLY = 2;
const ERROR = 3;
const TRACED = 1;
const VV_DIFF = 2;
const MAX_CODE_BYTES = 64;
const MAX_ERROR_TEXT_BYTES = 1024;

export type Envelope =
  | {
      readonly type: "request";
      readonly id: number;
      readonly traceparent: string | undefined;
      /** The message is a sync whose vector is a difference from the link's previous one. */
      readonly vvDiff: boolean;
      readonly message: Buffer;
    }
  | { readonly type: "reply"; readonly id: number; readonly message: Buffer }
  | { readonly type: "error"; readonly id: number; readonly code: string; readonly text: string };

function head(type: number, id: number): WireWriter {
  const w = new WireWriter();
  w.byte(type);
  w.varint(id);
  return w;
}

export function requestEnvelope(
  id: number,
  traceparent: string | undefined,
  message: Buffer,
  vvDiff = false,
): Buffer {
  const w = head(REQUEST, id);
  w.byte((traceparent === undefined ? 0 : TRACED) | (vvDiff ? VV_DIFF : 0));
  if (traceparent !== undefined) w.traceparent(traceparent);
  return Buffer.concat([w.finish(), message]);
}

export function replyEnvelope(id: number, message: Buffer): Buffer {
  return Buffer.concat([head(REPLY, id).finish(), message]);
}

export function errorEnvelope(id: number, code: string, text: string): Buffer {
  const w = head(ERROR, id);
  w.string(code.slice(0, MAX_CODE_BYTES));
  // Cut by characters well under the byte cap, so that UTF-8 cannot take it over.
  w.string(text.slice(0, MAX_ERROR_TEXT_BYTES / 4));
  return w.finish();
}

/** Reads an envelope; throws MalformedMessageError (the message inside is decoded later). */
export function openEnvelope(payload: Buffer): Envelope {
  const r = new WireReader(payload);
  const type = r.byte();
  const id = r.varint();
  if (type === REQUEST) {
    const flags = r.byte();
    if ((flags & ~(TRACED | VV_DIFF)) !== 0)
      throw new MalformedMessageError("unknown request flags");
    const traceparent = flags & TRACED ? r.traceparent() : undefined;
    return {
      type: "request",
      id,
      traceparent,
      vvDiff: (flags & VV_DIFF) !== 0,
      message: payload.subarray(payload.length - r.remaining()),
    };
  }
  if (type === REPLY)
    return { type: "reply", id, message: payload.subarray(payload.length - r.remaining()) };
  if (type === ERROR) {
    const code = r.id(MAX_CODE_BYTES);
    const text = r.id(MAX_ERROR_TEXT_BYTES);
    r.end();
    return { type: "error", id, code, text };
  }
  throw new MalformedMessageError(`unknown frame type ${type}`);
}
