// The likes a scenario sent and which of them a node acknowledged (201 new, 200 repeat): what
// the read-back at the end must find on every node.
import type { Outcome } from "./workload.js";

export class AckedLikes {
  sent = 0;
  /** Answers 201 or 200: the like is committed on the node that answered. */
  acknowledged = 0;
  /** Answered with another status: not taken. */
  other = 0;
  /** No answer (timeout, reset): whether the node took it is unknown, so it is not checked. */
  errors = 0;
  readonly byTarget: number[];
  private readonly users = new Map<string, Set<string>>();

  constructor(targets: number) {
    this.byTarget = Array.from({ length: targets }, () => 0);
  }

  sending(): void {
    this.sent++;
  }

  answered(
    like: { readonly post: string; readonly user: string },
    target: number,
    outcome: Outcome,
  ): void {
    if ("error" in outcome) {
      this.errors++;
      return;
    }
    if (outcome.status !== 200 && outcome.status !== 201) {
      this.other++;
      return;
    }
    this.acknowledged++;
    this.byTarget[target] = (this.byTarget[target] ?? 0) + 1;
    let users = this.users.get(like.post);
    if (!users) this.users.set(like.post, (users = new Set()));
    users.add(like.user);
  }

  /** Distinct (post, user) pairs acknowledged. */
  get distinct(): number {
    let n = 0;
    for (const users of this.users.values()) n += users.size;
    return n;
  }

  posts(): IterableIterator<[string, ReadonlySet<string>]> {
    return this.users.entries();
  }
}
