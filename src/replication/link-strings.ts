// The names a message carries (node names and origin ids), each sent once per direction of a
// peer link and by its index after that: a push of one like then names its sender and origin in
// two bytes, not in some thirty. Both ends of a direction keep the same table, because frames
// arrive in the order they were sent and a message adds its new names before anything else.
// The same holds for the ts a message's entries count from, a step from the last message's.
import { isNodeName, isOriginId, type NodeName, type OriginId } from "../crdt/index.js";
import { MalformedMessageError } from "./protocol.js";
import type { WireReader, WireWriter } from "./wire.js";

/** The names one direction of a link keeps at most; a message past it starts a new table. */
export const MAX_LINK_STRINGS = 4096;
/**
 * The farthest a message moves the ts its entries count from (ms, past any real clock's
 * distance); a first ts farther away is written from where the base stands.
 */
export const MAX_TS_STEP = 2 ** 50;
// Node names are at most 63 bytes, origin ids 96.
const MAX_NAME_BYTES = 96;
// A 1-character node name and its length.
const MIN_NAME_BYTES = 2;
const NODE = 1;
const ORIGIN = 2;

/**
 * A message whose names cannot be read. The two ends' tables may differ from here on, so the
 * link closes, where any other malformed message is refused alone.
 */
export class StringTableError extends MalformedMessageError {}

/** What the sending end of a direction has named, and what the message it encoded last adds. */
export class SentStrings {
  private readonly known = new Map<string, number>();
  /** The ts the entries of the last message with entries counted from. */
  private tsBase = 0;
  private pending:
    { readonly reset: boolean; readonly added: readonly string[]; tsBase?: number } | undefined;

  /**
   * Writes the table section of a message naming `names` (each once) and returns their indexes.
   * The table changes only when `sent()` says the message went out.
   */
  write(w: WireWriter, names: readonly string[]): Map<string, number> {
    let added = names.filter((name) => !this.known.has(name));
    const reset = this.known.size + added.length > MAX_LINK_STRINGS;
    if (reset) added = [...names];
    const base = reset ? 0 : this.known.size;
    const index = new Map<string, number>();
    added.forEach((name, i) => index.set(name, base + i));
    if (!reset)
      for (const name of names)
        if (!index.has(name)) index.set(name, this.known.get(name) as number);
    w.varint(added.length * 2 + (reset ? 1 : 0));
    for (const name of added) w.string(name);
    this.pending = { reset, added };
    return index;
  }

  /**
   * Writes, after the table section of a message with entries, the ts they count from: the
   * first entry's, as a step from the last message's (a byte or two where a ts takes six).
   * It moves only when `sent()` says the message went out.
   */
  writeTsBase(w: WireWriter, firstTs: number | undefined): number {
    const step = firstTs === undefined ? 0 : firstTs - this.tsBase;
    // A step too far (or no number: the entry's own check refuses it) leaves the base.
    const taken = Math.abs(step) <= MAX_TS_STEP ? step : 0;
    w.varint(taken < 0 ? -2 * taken - 1 : 2 * taken);
    const base = this.tsBase + taken;
    if (this.pending) this.pending.tsBase = base;
    return base;
  }

  /** The message encoded last went out: the other end now holds its names and ts base. */
  sent(): void {
    if (!this.pending) return;
    if (this.pending.reset) this.known.clear();
    for (const name of this.pending.added) this.known.set(name, this.known.size);
    if (this.pending.tsBase !== undefined) this.tsBase = this.pending.tsBase;
    this.pending = undefined;
  }
}

/** What the sending end of a direction has named, as the receiving end read it. */
export class ReceivedStrings {
  private names: string[] = [];
  private kinds: number[] = [];
  private seen = new Set<string>();
  private tsBase = 0;

  /** Reads a message's table section: a failure is a StringTableError. */
  read(r: WireReader): void {
    try {
      const head = r.varint();
      const reset = head % 2 === 1;
      const n = Math.floor(head / 2);
      if (n * MIN_NAME_BYTES > r.remaining()) throw new Error("count past the end");
      if (reset) {
        this.names = [];
        this.kinds = [];
        this.seen = new Set();
      } else if (this.names.length + n > MAX_LINK_STRINGS)
        throw new Error(`more than ${MAX_LINK_STRINGS} names on a link`);
      for (let i = 0; i < n; i++) {
        const name = r.id(MAX_NAME_BYTES);
        const kind = (isNodeName(name) ? NODE : 0) | (isOriginId(name) ? ORIGIN : 0);
        if (kind === 0) throw new Error("bad name");
        if (this.seen.has(name)) throw new Error("a name sent twice");
        this.seen.add(name);
        this.names.push(name);
        this.kinds.push(kind);
      }
    } catch (error) {
      throw new StringTableError(error instanceof Error ? error.message : String(error));
    }
  }

  /**
   * Reads the ts a message's entries count from (SentStrings.writeTsBase). Read right after the
   * names, before anything else can fail; a failure is a StringTableError.
   */
  readTsBase(r: WireReader): number {
    let v: number;
    try {
      v = r.varint();
    } catch (error) {
      throw new StringTableError(error instanceof Error ? error.message : String(error));
    }
    const step = v % 2 === 1 ? -(v + 1) / 2 : v / 2;
    const base = this.tsBase + step;
    if (Math.abs(step) > MAX_TS_STEP || base < 0 || !Number.isSafeInteger(base))
      throw new StringTableError("bad ts base");
    this.tsBase = base;
    return base;
  }

  node(index: number): NodeName {
    if (this.kinds[index] !== NODE) throw new MalformedMessageError("bad node");
    return this.names[index] as NodeName;
  }

  origin(index: number): OriginId {
    if (this.kinds[index] !== ORIGIN) throw new MalformedMessageError("bad origin");
    return this.names[index] as OriginId;
  }
}
