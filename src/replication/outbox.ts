// The latest own entries, in seq order, kept in memory for the push: a push need not read back
// from the store what this node has just committed. Older entries are read from the store.
import type { Entry } from "../crdt/index.js";
import { MAX_PUSH_ENTRIES } from "./protocol.js";

/** Entries kept once every peer has been sent what precedes them. */
const OUTBOX_MAX = 4 * MAX_PUSH_ENTRIES;

export class Outbox {
  private entries: Entry[] = [];

  /** A newly committed own entry. */
  add(entry: Entry): void {
    // Writers of one commit resume in any order (a sampled one has a span to end first): keep
    // the outbox in seq order, or every push would fall back to reading the store.
    let at = this.entries.length;
    while (at > 0 && (this.entries[at - 1] as Entry).seq > entry.seq) at--;
    this.entries.splice(at, 0, entry);
    if (this.entries.length > 2 * OUTBOX_MAX) this.entries = this.entries.slice(-OUTBOX_MAX);
  }

  /**
   * Own entries (after, upTo], at most a push's worth, or undefined when the outbox does not
   * hold them all contiguously.
   */
  take(after: number, upTo: number): Entry[] | undefined {
    const first = this.entries[0]?.seq;
    if (first === undefined || first > after + 1) return undefined;
    const start = after + 1 - first;
    const end = Math.min(upTo - first + 1, start + MAX_PUSH_ENTRIES);
    const taken = this.entries.slice(start, end);
    const contiguous =
      taken.length === end - start && taken.every((e, i) => e.seq === after + 1 + i);
    return contiguous && taken.length > 0 ? taken : undefined;
  }

  /** Forgets the entries up to `sent`, which every peer has been sent. */
  dropUpTo(sent: number): void {
    const keep = this.entries.findIndex((e) => e.seq > sent);
    if (keep > 0) this.entries = this.entries.slice(keep);
    else if (keep === -1 && this.entries.length > 0) this.entries = [];
  }
}
