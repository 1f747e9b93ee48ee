// The parts of a peer message that repeat across kinds (codec.ts has the whole layout):
// entries, grouped by origin with seqs and ts as steps, and digests. Every read is checked
// before anything is allocated for it.
import {
  isSeq,
  MAX_SEQ,
  type Digest,
  type Entry,
  type OriginId,
  type PostId,
  type UserId,
} from "../crdt/index.js";
import type { ReceivedStrings } from "./link-strings.js";
import { MalformedMessageError } from "./protocol.js";
import type { WireReader, WireWriter } from "./wire.js";

// Entry flags: what follows the flags byte, and which way ts moved from the previous entry.
const TRACED = 1;
const SEQ_GIVEN = 2;
const TS_BACK = 4;
const KNOWN_FLAGS = TRACED | SEQ_GIVEN | TS_BACK;
// Least bytes of an entry (flags, ts, two 1-byte fields), a digest pair or a group header:
// bounds a count before anything is allocated for it.
const MIN_ENTRY_BYTES = 6;
const MIN_PAIR_BYTES = 2;

export function writeEntries(
  w: WireWriter,
  entries: readonly Entry[],
  table: ReadonlyMap<string, number>,
  tsBase: number,
) {
  const starts: number[] = [];
  for (let i = 0; i < entries.length; i++)
    if (i === 0 || entries[i]?.origin !== entries[i - 1]?.origin) starts.push(i);
  w.varint(starts.length);
  for (let g = 0; g < starts.length; g++) {
    const start = starts[g] as number;
    const end = starts[g + 1] ?? entries.length;
    w.varint(table.get((entries[start] as Entry).origin) as number);
    w.varint(end - start);
    let seq = 0;
    let ts = tsBase;
    for (let i = start; i < end; i++) {
      const e = entries[i] as Entry;
      if (!isSeq(e.seq) || !Number.isSafeInteger(e.ts) || e.ts < 0)
        throw new RangeError(`entry ${e.origin}#${e.seq} cannot be encoded`);
      const flags =
        (e.traceparent === undefined ? 0 : TRACED) |
        (e.seq === seq + 1 ? 0 : SEQ_GIVEN) |
        (e.ts < ts ? TS_BACK : 0);
      w.byte(flags);
      if (flags & SEQ_GIVEN) w.varint(e.seq);
      w.varint(Math.abs(e.ts - ts));
      w.string(e.post);
      w.string(e.user);
      if (e.traceparent !== undefined) w.traceparent(e.traceparent);
      seq = e.seq;
      ts = e.ts;
    }
  }
}

export function writeDigest(w: WireWriter, digest: Digest, table: ReadonlyMap<string, number>) {
  w.varint(digest.size);
  for (const [origin, seq] of digest) {
    w.varint(table.get(origin) as number);
    w.varint(seq);
  }
}

export function readEntries(
  r: WireReader,
  origins: ReceivedStrings,
  limit: number,
  tsBase: number,
): Entry[] {
  const groups = r.count(MIN_PAIR_BYTES + MIN_ENTRY_BYTES);
  const entries: Entry[] = [];
  for (let g = 0; g < groups; g++) {
    const origin = origins.origin(r.varint());
    const n = r.count(MIN_ENTRY_BYTES);
    if (n === 0) throw new MalformedMessageError("empty group");
    if (entries.length + n > limit) throw new MalformedMessageError(`more than ${limit} entries`);
    let seq = 0;
    let ts = tsBase;
    for (let k = 0; k < n; k++) {
      const flags = r.byte();
      if (flags & ~KNOWN_FLAGS) throw new MalformedMessageError("unknown entry flags");
      if (flags & SEQ_GIVEN) {
        const given = r.varint();
        if (given === seq + 1) throw new MalformedMessageError("seq given where implied");
        seq = given;
      } else seq++;
      if (!isSeq(seq)) throw new MalformedMessageError("bad seq");
      const step = r.varint();
      if (flags & TS_BACK && step === 0) throw new MalformedMessageError("ts back by 0");
      ts = flags & TS_BACK ? ts - step : ts + step;
      if (ts < 0 || !Number.isSafeInteger(ts)) throw new MalformedMessageError("bad ts");
      const post = r.likeField() as PostId;
      const user = r.likeField() as UserId;
      entries.push(
        flags & TRACED
          ? { origin, seq, post, user, ts, traceparent: r.traceparent() }
          : { origin, seq, post, user, ts },
      );
    }
  }
  return entries;
}

export function readDigest(r: WireReader, origins: ReceivedStrings): Map<OriginId, number> {
  const n = r.count(MIN_PAIR_BYTES);
  const digest = new Map<OriginId, number>();
  for (let i = 0; i < n; i++) {
    const origin = origins.origin(r.varint());
    if (digest.has(origin)) throw new MalformedMessageError("origin twice in a digest");
    const seq = r.varint();
    if (seq > MAX_SEQ) throw new MalformedMessageError("bad seq in a digest");
    digest.set(origin, seq);
  }
  return digest;
}
