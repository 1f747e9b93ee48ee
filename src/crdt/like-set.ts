// The set view of likes: a grow-only set of (post, user) pairs. Adding is idempotent, so
// replicas that add the likes of the same dots, in any order and any number of times, hold the
// same set. The memory store keeps its set view in one; SQLite's `likes` table is the same
// set on disk (INSERT OR IGNORE is `add`).
import type { Like } from "./like.js";
import { compareUtf8 } from "./like.js";
import type { PostId, UserId } from "./ids.js";

export class LikeSet {
  private readonly byPost = new Map<PostId, Set<UserId>>();
  private n = 0;

  /** Adds a like; false when it was already there. */
  add(like: Like): boolean {
    let users = this.byPost.get(like.post);
    if (!users) this.byPost.set(like.post, (users = new Set()));
    if (users.has(like.user)) return false;
    users.add(like.user);
    this.n++;
    return true;
  }

  has(like: Like): boolean {
    return this.byPost.get(like.post)?.has(like.user) ?? false;
  }

  /** Number of distinct likes. */
  get size(): number {
    return this.n;
  }

  count(post: PostId): number {
    return this.byPost.get(post)?.size ?? 0;
  }

  /** Users of a post in UTF-8 byte order, strictly after `after`, at most `limit`. */
  users(post: PostId, after: UserId | undefined, limit: number): UserId[] {
    const all = [...(this.byPost.get(post) ?? [])].sort(compareUtf8);
    const from = after === undefined ? all : all.filter((user) => compareUtf8(user, after) > 0);
    return from.slice(0, limit);
  }
}
