// The in-memory Store, for unit tests and the deterministic simulation.
import {
  LikeSet,
  VersionVector,
  originId,
  type Entry,
  type NodeName,
  type OriginId,
  type PostId,
  type SeqRange,
  type UserId,
} from "../crdt/index.js";
import { randomIncarnation } from "./incarnation.js";
import { LogStore } from "./log-store.js";

/**
 * What a memory store keeps across close and reopen: the simulation's stand-in for a data
 * directory. A node "crashes" by dropping its store and "restarts" by opening this again.
 */
export class MemoryDisk {
  origin: OriginId | undefined;
  readonly log: Entry[] = [];
  readonly contiguous = new Map<OriginId, number>();
}

export interface MemoryStoreOptions {
  readonly disk?: MemoryDisk;
  readonly newIncarnation?: () => string;
  /** How a batch of writes is scheduled; the simulation commits on its own virtual clock. */
  readonly schedule?: (flush: () => void) => void;
}

/** A Store held in memory, for unit tests and the deterministic simulation. */
export class MemoryStore extends LogStore {
  private readonly byOrigin = new Map<OriginId, Map<number, Entry>>();
  private readonly likes = new LikeSet();
  private open = true;

  private constructor(
    nodeName: NodeName,
    origin: OriginId,
    private readonly disk: MemoryDisk,
    schedule?: (flush: () => void) => void,
  ) {
    const vv = VersionVector.from(disk.contiguous);
    super(nodeName, origin, vv, schedule);
    for (const entry of disk.log) {
      this.index(entry);
      vv.add(entry);
      this.insertLike(entry.post, entry.user);
    }
  }

  static open(nodeName: NodeName, options: MemoryStoreOptions = {}): MemoryStore {
    const disk = options.disk ?? new MemoryDisk();
    // Every start is a new incarnation, as the SQLite store's (sqlite-schema.ts).
    disk.origin = originId(nodeName, (options.newIncarnation ?? randomIncarnation)());
    return new MemoryStore(nodeName, disk.origin, disk, options.schedule);
  }

  protected transaction<T>(fn: () => T): T {
    if (!this.open) throw new Error("memory store is closed");
    return fn();
  }

  protected insertEntry(entry: Entry): void {
    this.index(entry);
    this.disk.log.push(entry);
  }

  protected insertLike(post: PostId, user: UserId): boolean {
    return this.likes.add({ post, user });
  }

  protected saveContiguous(origin: OriginId, upTo: number): void {
    this.disk.contiguous.set(origin, upTo);
  }

  protected closeStorage(): void {
    this.open = false;
  }

  entries(range: SeqRange, limit: number): Entry[] {
    const held = this.byOrigin.get(range.origin);
    if (!held) return [];
    // Walk the range when it is narrower than what is held, else filter what is held: a range
    // can reach MAX_SEQ.
    if (range.upTo - range.after <= held.size) {
      const out: Entry[] = [];
      for (let seq = range.after + 1; seq <= range.upTo && out.length < limit; seq++) {
        const entry = held.get(seq);
        if (entry) out.push(entry);
      }
      return out;
    }
    return [...held.values()]
      .filter((e) => e.seq > range.after && e.seq <= range.upTo)
      .sort((a, b) => a.seq - b.seq)
      .slice(0, limit);
  }

  count(post: PostId): number {
    return this.likes.count(post);
  }

  liked(post: PostId, user: UserId): boolean {
    return this.likes.has({ post, user });
  }

  users(post: PostId, after: UserId | undefined, limit: number): UserId[] {
    return this.likes.users(post, after, limit);
  }

  setSize(): number {
    return this.likes.size;
  }

  private index(entry: Entry): void {
    let held = this.byOrigin.get(entry.origin);
    if (!held) this.byOrigin.set(entry.origin, (held = new Map<number, Entry>()));
    held.set(entry.seq, entry);
  }
}
