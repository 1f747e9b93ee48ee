import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ContiguousSaves, SAVE_EVERY } from "../../src/store/contiguous-saves.js";

/** A transaction: seqs it makes contiguous (by origin id, steps forward) and how it ends. */
const transaction = fc.record({
  advances: fc.array(
    fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: SAVE_EVERY + 100 })),
    { maxLength: 4 },
  ),
  commits: fc.boolean(),
});

describe("ContiguousSaves", () => {
  it("writes a row once it lags by SAVE_EVERY, never what a rolled-back transaction advanced, and leaves the rest to the close", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 3 }), fc.nat(SAVE_EVERY * 3))),
        fc.array(transaction, { maxLength: 30 }),
        (onDisk, transactions) => {
          const disk = new Map(onDisk);
          const saves = new ContiguousSaves(disk);
          // The model: what the store holds (the rows) and what it committed.
          const committed = new Map(disk);
          for (const t of transactions) {
            const advanced = new Map<number, number>();
            for (const [id, step] of t.advances) {
              const upTo = (advanced.get(id) ?? committed.get(id) ?? 0) + step;
              advanced.set(id, upTo);
              saves.advance(id, upTo);
            }
            const due = saves.due();
            // Due: exactly the rows this transaction moved by SAVE_EVERY or more past the disk.
            const expected = [...advanced].filter(
              ([id, upTo]) => upTo - (disk.get(id) ?? 0) >= SAVE_EVERY,
            );
            expect(new Map(due)).toEqual(new Map(expected));
            if (t.commits) {
              for (const [id, upTo] of due) disk.set(id, upTo);
              for (const [id, upTo] of advanced) committed.set(id, upTo);
              saves.commit();
            } else saves.forget();
            // What a close would write: every committed row ahead of the saved one, no other.
            const unsaved = new Map(saves.unsaved(committed));
            for (const [id, upTo] of committed)
              expect(unsaved.get(id)).toBe(upTo > (disk.get(id) ?? 0) ? upTo : undefined);
          }
          // A clean close writes the rest: every row then says what was committed.
          const rest = saves.unsaved(committed);
          for (const [id, upTo] of rest) disk.set(id, upTo);
          saves.wrote(rest);
          expect(saves.unsaved(committed)).toEqual([]);
          for (const [id, upTo] of committed) expect(disk.get(id) ?? 0).toBe(upTo);
        },
      ),
    );
  });
});
