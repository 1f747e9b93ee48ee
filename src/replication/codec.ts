import { fromWire, MalformedMessageError, toWire, type PeerMessage } from "./protocol.js";

/** Turns messages into bytes and back; the byte counts feed the gossip metrics. */
export interface Codec {
  readonly contentType: string;
  encode(message: PeerMessage): Buffer;
  /** Throws MalformedMessageError for anything that is not a valid message of that kind. */
  decode(bytes: Buffer, kind: PeerMessage["kind"]): PeerMessage;
}

export const jsonCodec: Codec = {
  contentType: "application/json",
  encode: (message) => Buffer.from(JSON.stringify(toWire(message)), "utf8"),
  decode: (bytes, kind) => {
    let value: unknown;
    try {
      value = JSON.parse(bytes.toString("utf8"));
    } catch {
      throw new MalformedMessageError("not valid JSON");
    }
    return fromWire(value, kind);
  },
};
