// What the snapshot unit tests share: the two ends' identities, the snapshot checksum and a clock
// whose timers run when the test says.
import { createHash } from "node:crypto";
import type { NodeName, OriginId } from "../../src/crdt/index.js";
import type { Clock } from "../../src/replication/ports.js";
import { SNAPSHOT_CHECKSUM } from "../../src/store/index.js";

export const self = { node: "joiner" as NodeName, origin: "joiner~tmp1" as OriginId };
export const peerSelf = { node: "server" as NodeName, origin: "server~abc1" as OriginId };

export const sha = (bytes: Buffer) => createHash(SNAPSHOT_CHECKSUM).update(bytes).digest();

/** A clock whose timers run when the test says. */
export function manualClock(): Clock & { fire(): void } {
  const timers = new Set<() => void>();
  return {
    now: () => 0,
    setTimeout: (callback) => {
      timers.add(callback);
      return { cancel: () => timers.delete(callback) };
    },
    fire: () => {
      for (const t of [...timers]) {
        timers.delete(t);
        t();
      }
    },
  };
}
