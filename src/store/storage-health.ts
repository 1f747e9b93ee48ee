// Whether the SQLite store can serve: every failure of the disk passes through here, becomes a
// named error (StorageFullError, StoreCorruptError) and, when it changes, is told to the node.
import { describe, isCorrupt, isFull, type DataDirectory } from "./data-dir.js";
import { StorageFullError, StoreCorruptError } from "./types.js";

/** ok; full: writes fail until space is freed; corrupt: the store serves nothing more. */
export type StorageCondition = "ok" | "full" | "corrupt";

/** While the disk is full, a write is tried this often, so an idle node turns ready by itself. */
const PROBE_EVERY_MS = 1000;

export class StorageHealth {
  private state: StorageCondition = "ok";
  private lastProbe = 0;
  private corruption: StoreCorruptError | undefined;

  constructor(
    private readonly dir: DataDirectory,
    private readonly onChange: (condition: StorageCondition, detail: string) => void = () => {},
  ) {}

  get condition(): StorageCondition {
    return this.state;
  }

  /** Throws when the store is corrupt: nothing it would read or write can be trusted. */
  check(): void {
    if (this.corruption) throw this.corruption;
  }

  /** The error to report for a failed read or write, recording what it says about the disk. */
  failed(error: unknown): unknown {
    if (isCorrupt(error)) {
      if (!this.corruption) {
        this.corruption = new StoreCorruptError(this.dir.path, describe(error));
        this.dir.markCorrupt();
        this.change("corrupt", this.corruption.message);
      }
      return this.corruption;
    }
    if (isFull(error)) {
      const full = new StorageFullError(this.dir.path, describe(error));
      if (this.state === "ok") this.change("full", full.message);
      return full;
    }
    return error;
  }

  /**
   * While full, runs `write` (a small transaction) at most once every PROBE_EVERY_MS: its success
   * or failure passes through succeeded() or failed(), so the condition follows the disk.
   */
  probeWhileFull(write: () => void): void {
    if (this.state !== "full") return;
    const now = Date.now();
    if (now - this.lastProbe < PROBE_EVERY_MS) return;
    this.lastProbe = now;
    try {
      write();
    } catch {
      // Still full: failed() recorded it.
    }
  }

  /** A commit succeeded: the disk takes writes again. */
  succeeded(): void {
    if (this.state === "full") this.change("ok", "a commit succeeded");
  }

  private change(condition: StorageCondition, detail: string): void {
    this.state = condition;
    this.onChange(condition, detail);
  }
}
