// Each origin's contiguous seq, written to the store now and then rather than in every commit.
//
// A commit of a few likes dirties about a dozen pages, and each goes to the WAL whole: the row
// of an origin's contiguous seq was one of them in every commit. What the row says can be found
// again: at open, the store scans the entries each origin holds above its saved seq (a rowid
// range, sqlite-schema.ts) and the version vector takes them in order. So the row is written
// when it lags by SAVE_EVERY seqs, which bounds that scan, and at a clean close.

/** Seqs an origin's saved contiguous seq may lag: at most this many entries scanned at open. */
export const SAVE_EVERY = 4096;

export class ContiguousSaves {
  /** What the store holds, by origin id. */
  private readonly saved = new Map<number, number>();
  /** Advanced by the running transaction, which may yet roll back. */
  private readonly staged = new Map<number, number>();
  /** Written by the running transaction. */
  private readonly writing = new Map<number, number>();

  constructor(onDisk: Iterable<readonly [id: number, upTo: number]>) {
    for (const [id, upTo] of onDisk) this.saved.set(id, upTo);
  }

  /** The running transaction made the origin's entries contiguous up to `upTo`. */
  advance(id: number, upTo: number): void {
    this.staged.set(id, upTo);
  }

  /** In the running transaction: the rows that lag far enough to be written now. */
  due(): [id: number, upTo: number][] {
    const due: [number, number][] = [];
    for (const [id, upTo] of this.staged)
      if (upTo - (this.saved.get(id) ?? 0) >= SAVE_EVERY) {
        due.push([id, upTo]);
        this.writing.set(id, upTo);
      }
    return due;
  }

  /** The running transaction committed. */
  commit(): void {
    for (const [id, upTo] of this.writing) this.saved.set(id, upTo);
    this.forget();
  }

  /** The running transaction rolled back: what it advanced or wrote never was. */
  forget(): void {
    this.staged.clear();
    this.writing.clear();
  }

  /**
   * Of what was committed (the store's version vector, by origin id), the rows the store does
   * not hold yet: written at a clean close.
   */
  unsaved(committed: Iterable<readonly [id: number, upTo: number]>): [id: number, upTo: number][] {
    const rows: [number, number][] = [];
    for (const [id, upTo] of committed) if (upTo > (this.saved.get(id) ?? 0)) rows.push([id, upTo]);
    return rows;
  }

  /** The rows were written outside a commit of likes (at close). */
  wrote(rows: readonly (readonly [number, number])[]): void {
    for (const [id, upTo] of rows) this.saved.set(id, upTo);
  }
}
