// What answers a plain request (plain-request.ts) on a lean connection (lean-connection.ts).
import type { Socket } from "node:net";
import type { PlainRequest } from "./plain-request.js";

export interface PlainReply {
  readonly status: number;
  /** Headers of the answer besides its type, length and connection (an error's Allow, say). */
  readonly headers?: Readonly<Record<string, string>>;
  /** The JSON text of the answer. */
  readonly body: string;
}

/** A status and a JSON body (an app's answer, an error's) as a plain reply. */
export function replyOf(answer: {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body: unknown;
}): PlainReply {
  const body = JSON.stringify(answer.body);
  return answer.headers
    ? { status: answer.status, headers: answer.headers, body }
    : { status: answer.status, body };
}

/** Answers a plain request; it never throws or rejects (errors are answers too). */
export type PlainHandler = (
  request: PlainRequest,
  socket: Socket,
) => PlainReply | Promise<PlainReply>;
