import { describe, expect, it } from "vitest";
import { GroupCommit } from "../../src/store/group-commit.js";
import { waitFor } from "../support/wait.js";

describe("group commit", () => {
  it("waits, the event loop free, while the write lock is held elsewhere, then commits", async () => {
    const commits: number[][] = [];
    let held = true;
    const group = new GroupCommit<number, number>(
      (ops) => {
        commits.push([...ops]);
        return ops.map((op) => op * 10);
      },
      undefined,
      undefined,
      () => held,
    );
    const results = Promise.all([group.submit(1), group.submit(2)]);
    // Timers and I/O go on while the commit waits: here, several turns of the loop.
    let turns = 0;
    await waitFor("the loop to turn while the commit waits", () => ++turns >= 5, {
      timeoutMs: 2000,
      intervalMs: 2,
    });
    expect(commits).toEqual([]);
    const late = group.submit(3);
    held = false;
    expect(await results).toEqual([10, 20]);
    expect(await late).toBe(30);
    // What was queued while held went in one commit.
    expect(commits).toEqual([[1, 2, 3]]);
  });

  it("commits what is queued when closed, even while the lock is held elsewhere", async () => {
    const commits: number[][] = [];
    const group = new GroupCommit<number, number>(
      (ops) => {
        commits.push([...ops]);
        return [...ops];
      },
      undefined,
      undefined,
      () => true,
    );
    const result = group.submit(7);
    group.close();
    expect(commits).toEqual([[7]]);
    expect(await result).toBe(7);
  });
});
