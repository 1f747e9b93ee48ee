// The peer protocol's binary format (v3): messages to bytes and back, every decode fully
// checked before anything is applied.
import { isSeq, type OriginId } from "../crdt/index.js";
import {
  MAX_PAGE_ENTRIES,
  MAX_PUSH_ENTRIES,
  MAX_SNAPSHOT_CHUNK,
  MalformedMessageError,
  CHECKSUM_BYTES,
  MAX_PROBLEM_BYTES,
  type PeerMessage,
} from "./protocol.js";
import { ReceivedStrings, SentStrings } from "./link-strings.js";
import { readDigest, readEntries, writeDigest, writeEntries } from "./message-parts.js";
import { WireReader, WireWriter } from "./wire.js";

/** Turns messages into bytes and back; the byte counts feed the gossip metrics. */
export interface Codec {
  readonly contentType: string;
  /**
   * `names`: what this direction of a link has named before (link-strings.ts); without it the
   * message names everything itself. Call `names.sent()` once the bytes go out.
   */
  encode(message: PeerMessage, names?: SentStrings): Buffer;
  /**
   * Throws MalformedMessageError for anything that is not a valid message of that kind, and its
   * StringTableError when `names` can no longer follow the sender's.
   */
  decode(bytes: Buffer, kind: PeerMessage["kind"], names?: ReceivedStrings): PeerMessage;
  /** The kind a message says it is, unchecked (decode checks it); undefined if none. */
  kindOf(bytes: Buffer): PeerMessage["kind"] | undefined;
}

// The first byte: format version in the high nibble, message kind in the low one.
const FORMAT = 0x30;
const KIND_CODE: Readonly<Record<PeerMessage["kind"], number>> = {
  deltas: 1,
  sync: 2,
  "deltas-reply": 3,
  "sync-reply": 4,
  "snapshot-begin": 5,
  "snapshot-begin-reply": 6,
  "snapshot-chunk": 7,
  "snapshot-chunk-reply": 8,
  "snapshot-end": 9,
  "snapshot-end-reply": 10,
};
const KINDS = Object.keys(KIND_CODE) as PeerMessage["kind"][];
// A deltas-reply that carries a ride (entries of its own): a tag of its own, so that a plain
// answer carries no ts base and no empty entries.
const RIDE_TAG = FORMAT | 11;
// The tags of the messages with entries: they carry a ts base after their names.
const WITH_ENTRIES = new Set([
  FORMAT | KIND_CODE.deltas,
  FORMAT | KIND_CODE["sync-reply"],
  RIDE_TAG,
]);

/**
 * The compact binary form of peer messages (format 3):
 *
 *   message = tag:u8 names:(2n + reset, id×n) [ts-base] node:index sender:index body
 *   deltas: entries [acks:digest] · sync: digest [window] · deltas-reply: digest
 *   deltas-reply with a ride (its own tag, 11): digest entries
 *   sync-reply: more:u8 entries diff:digest
 *   window  = origin-index after upTo-after   (a catch-up's page: one origin's seqs, after < upTo)
 *   snapshot-begin: min-entries · snapshot-begin-reply: id bytes entries digest
 *   snapshot-chunk: id offset · snapshot-chunk-reply: id offset data:(length, bytes)
 *   snapshot-end: id · snapshot-end-reply: id checksum:32 problem
 *   entries = (groups, (origin-index, count, entry×count)×groups)
 *   entry   = flags:u8 [seq] |Δts| post user [traceparent:25 bytes]
 *   digest  = (n, (origin-index, seq)×n)
 *
 * Integers are unsigned LEB128 varints, ids and fields a varint byte length then UTF-8. Node
 * names and origin ids are written once, in the table of the link's direction (link-strings.ts:
 * a message adds the ones it names first, or starts the table anew when `reset`), and named by
 * their index in it after that; a message encoded alone names all its own. Consecutive
 * entries of one origin form a group; inside it a seq is written only when it is not the
 * previous one plus one (SEQ_GIVEN), and ts as the distance from the previous entry's, TS_BACK
 * when it went down; in each group seq starts at 0 and ts at the message's ts base. A message
 * with entries (deltas, sync-reply) moves that base, after its names, to its first entry's ts
 * by a zigzag varint step from the last one of its direction (link-strings.ts; from 0 alone).
 */
export const binaryCodec: Codec = {
  contentType: "application/vnd.likes.peer.v3",
  kindOf(bytes) {
    const tag = bytes[0];
    if (tag === undefined || (tag & 0xf0) !== FORMAT) return undefined;
    if (tag === RIDE_TAG) return "deltas-reply";
    return KINDS.find((kind) => KIND_CODE[kind] === (tag & 0x0f));
  },
  encode(message, names = new SentStrings()) {
    const w = new WireWriter();
    const tag =
      message.kind === "deltas-reply" && message.entries?.length
        ? RIDE_TAG
        : FORMAT | KIND_CODE[message.kind];
    w.byte(tag);
    const table = names.write(w, namesOf(message));
    const tsBase = WITH_ENTRIES.has(tag)
      ? names.writeTsBase(w, "entries" in message ? message.entries?.[0]?.ts : undefined)
      : undefined;
    w.varint(table.get(message.node) as number);
    w.varint(table.get(message.origin) as number);
    switch (message.kind) {
      case "deltas":
        writeEntries(w, message.entries, table, tsBase as number);
        // Only a push that acknowledges a ride writes them: any other is byte for byte as before.
        if (message.acks?.size) writeDigest(w, message.acks, table);
        break;
      case "sync":
        writeDigest(w, message.vv, table);
        // Only a catch-up's windowed page writes it: a plain sync is byte for byte as before.
        if (message.window) {
          const { origin, after, upTo } = message.window;
          if (!isSeq(upTo) || after < 0 || after >= upTo)
            throw new RangeError(`window ${origin} ${after}..${upTo} cannot be encoded`);
          w.varint(table.get(origin) as number);
          w.varint(after);
          w.varint(upTo - after);
        }
        break;
      case "deltas-reply":
        writeDigest(w, message.vv, table);
        if (tag === RIDE_TAG) writeEntries(w, message.entries ?? [], table, tsBase as number);
        break;
      case "sync-reply":
        w.byte(message.more ? 1 : 0);
        writeEntries(w, message.entries, table, tsBase as number);
        writeDigest(w, message.diff, table);
        break;
      case "snapshot-begin":
        w.varint(message.minEntries);
        break;
      case "snapshot-begin-reply":
        w.varint(message.id);
        w.varint(message.bytes);
        w.varint(message.entryCount);
        writeDigest(w, message.vv, table);
        break;
      case "snapshot-chunk":
        w.varint(message.id);
        w.varint(message.offset);
        break;
      case "snapshot-chunk-reply":
        if (message.data.length > MAX_SNAPSHOT_CHUNK)
          throw new RangeError(`a snapshot chunk of ${message.data.length} bytes`);
        w.varint(message.id);
        w.varint(message.offset);
        w.varint(message.data.length);
        w.raw(message.data);
        break;
      case "snapshot-end":
        w.varint(message.id);
        break;
      case "snapshot-end-reply":
        if (message.checksum.length !== CHECKSUM_BYTES)
          throw new RangeError("not a snapshot checksum");
        if (Buffer.byteLength(message.problem) > MAX_PROBLEM_BYTES)
          throw new RangeError(`a problem of more than ${MAX_PROBLEM_BYTES} bytes`);
        w.varint(message.id);
        w.raw(message.checksum);
        w.string(message.problem);
        break;
    }
    return w.finish();
  },
  decode(bytes, kind, names = new ReceivedStrings()) {
    try {
      return readMessage(new WireReader(bytes), kind, names);
    } catch (error) {
      // The reader throws only MalformedMessageError; anything else is still the input's fault.
      if (error instanceof MalformedMessageError) throw error;
      throw new MalformedMessageError(`undecodable: ${String(error)}`);
    }
  },
};

/** Every name the message holds, each once: the sender's node name and origin first. */
function namesOf(message: PeerMessage): string[] {
  const names = new Set<string>([message.node, message.origin]);
  if ("entries" in message) {
    let last: OriginId | undefined;
    for (const { origin } of message.entries ?? []) if (origin !== last) names.add((last = origin));
  }
  if ("acks" in message) for (const origin of message.acks?.keys() ?? []) names.add(origin);
  if ("vv" in message) for (const origin of message.vv.keys()) names.add(origin);
  if ("diff" in message) for (const origin of message.diff.keys()) names.add(origin);
  if ("window" in message && message.window) names.add(message.window.origin);
  return [...names];
}

function readMessage(
  r: WireReader,
  kind: PeerMessage["kind"],
  origins: ReceivedStrings,
): PeerMessage {
  const tag = r.byte();
  if ((tag & 0xf0) !== FORMAT) throw new MalformedMessageError("not a message of peer format 3");
  // A message of another kind than expected still adds its names and moves the ts base: the
  // sender's table has them.
  origins.read(r);
  const tsBase = WITH_ENTRIES.has(tag) ? origins.readTsBase(r) : 0;
  const ride = tag === RIDE_TAG;
  if (tag !== (FORMAT | KIND_CODE[kind]) && !(ride && kind === "deltas-reply"))
    throw new MalformedMessageError(`expected kind ${kind}`);
  const sender = { node: origins.node(r.varint()), origin: origins.origin(r.varint()) };
  let message: PeerMessage;
  switch (kind) {
    case "deltas": {
      const entries = readEntries(r, origins, MAX_PAGE_ENTRIES, tsBase);
      if (r.remaining() === 0) {
        message = { kind, ...sender, entries };
        break;
      }
      const acks = readDigest(r, origins);
      if (acks.size === 0) throw new MalformedMessageError("acks given empty");
      message = { kind, ...sender, entries, acks };
      break;
    }
    case "sync": {
      const vv = readDigest(r, origins);
      if (r.remaining() === 0) {
        message = { kind, ...sender, vv };
        break;
      }
      const origin = origins.origin(r.varint());
      const after = r.varint();
      const upTo = after + r.varint();
      if (upTo === after || !isSeq(upTo)) throw new MalformedMessageError("bad window");
      message = { kind, ...sender, vv, window: { origin, after, upTo } };
      break;
    }
    case "deltas-reply": {
      const vv = readDigest(r, origins);
      if (!ride) {
        message = { kind, ...sender, vv };
        break;
      }
      const entries = readEntries(r, origins, MAX_PUSH_ENTRIES, tsBase);
      if (entries.length === 0) throw new MalformedMessageError("a ride of no entries");
      message = { kind, ...sender, vv, entries };
      break;
    }
    case "sync-reply": {
      const more = r.byte();
      if (more > 1) throw new MalformedMessageError("more must be 0 or 1");
      const entries = readEntries(r, origins, MAX_PAGE_ENTRIES, tsBase);
      message = { kind, ...sender, entries, diff: readDigest(r, origins), more: more === 1 };
      break;
    }
    case "snapshot-begin":
      message = { kind, ...sender, minEntries: r.varint() };
      break;
    case "snapshot-begin-reply": {
      const id = r.varint();
      const bytes = r.varint();
      const entryCount = r.varint();
      if (id === 0 && bytes !== 0) throw new MalformedMessageError("bytes of no snapshot");
      message = { kind, ...sender, id, bytes, entryCount, vv: readDigest(r, origins) };
      break;
    }
    case "snapshot-chunk":
      message = { kind, ...sender, id: r.varint(), offset: r.varint() };
      break;
    case "snapshot-chunk-reply": {
      const id = r.varint();
      const offset = r.varint();
      const length = r.varint();
      if (length > MAX_SNAPSHOT_CHUNK)
        throw new MalformedMessageError(
          `a snapshot chunk of more than ${MAX_SNAPSHOT_CHUNK} bytes`,
        );
      message = { kind, ...sender, id, offset, data: r.raw(length) };
      break;
    }
    case "snapshot-end":
      message = { kind, ...sender, id: r.varint() };
      break;
    case "snapshot-end-reply": {
      const id = r.varint();
      const checksum = r.raw(CHECKSUM_BYTES);
      message = { kind, ...sender, id, checksum, problem: r.id(MAX_PROBLEM_BYTES) };
      break;
    }
  }
  r.end();
  return message;
}
