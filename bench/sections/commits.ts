// The store's commit alone, as a receiving peer makes it: a figure that the process-wide ones
// (CPU per like of a receiving peer, of the loaded node) contain, without their noise.
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Runtime } from "../lib/node24.js";
import { figure, type Figure } from "../lib/stats.js";

export interface CommitsResult {
  readonly runtime: string;
  readonly held: number;
  readonly likesPerCommit: number;
  /** The transaction's time per commit, as likes_store_commit_seconds sees it. */
  readonly transactionUs: Figure;
  readonly walBytesPerCommit: Figure;
}

/** `commits` commits of `perCommit` likes of a peer into a store that holds `held`, per round. */
export function commits(o: {
  readonly root: string;
  readonly runtime: Runtime;
  readonly held: number;
  readonly commits: number;
  readonly perCommit: number;
  readonly rounds: number;
}): CommitsResult {
  const transaction: number[] = [];
  const wal: number[] = [];
  for (let round = 0; round < o.rounds; round++) {
    const dir = join(o.root, `commits-${round}`);
    const out = execFileSync(
      o.runtime.node,
      [
        join(dirname(o.runtime.gen), "commits.js"),
        dir,
        String(o.held),
        String(o.commits),
        String(o.perCommit),
      ],
      { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] },
    );
    rmSync(dir, { recursive: true, force: true });
    const r = JSON.parse(out) as { transactionUs: number; walBytesPerCommit: number };
    transaction.push(r.transactionUs);
    wal.push(r.walBytesPerCommit);
  }
  return {
    runtime: o.runtime.label,
    held: o.held,
    likesPerCommit: o.perCommit,
    transactionUs: figure(transaction),
    walBytesPerCommit: figure(wal),
  };
}
