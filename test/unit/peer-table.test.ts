// The peer table's refusals: a peer that answers "no" (or whose answer this node refuses) is
// held for a backoff, not marked down; what ends a hold, and what does not.
import { describe, expect, it } from "vitest";
import type { NodeName, OriginId } from "../../src/crdt/index.js";
import { PeerLimitError } from "../../src/replication/limits.js";
import { PeerState } from "../../src/replication/peer-state.js";
import { PeerTable } from "../../src/replication/peer-table.js";
import { StaticMembership } from "../../src/replication/ports.js";
import { StorageFullError } from "../../src/store/index.js";
import type { Logger } from "../../src/telemetry/types.js";
import { ManualClock } from "../support/manual-clock.js";

const PEER = "b:1";
const answer = { node: "b" as NodeName, origin: "b~1" as OriginId };
/** A send rejected with the peer's error code: the peer answered, and refused. */
const refusedByPeer = () =>
  Object.assign(new Error("b:1 refused: peer_limit: no"), { code: "peer_limit" });

function table() {
  const clock = new ManualClock();
  const lines: string[] = [];
  const logger: Logger = {
    error: (m) => lines.push(m),
    warn: (m) => lines.push(m),
    info: (m) => lines.push(m),
    debug: () => {},
  };
  const retries: PeerState[] = [];
  const backs: PeerState[] = [];
  const peers = new PeerTable({
    self: { node: "a" as NodeName, origin: "a~1" as OriginId },
    holds: () => new Map(),
    membership: new StaticMembership([PEER]),
    clock,
    random: () => 0.5,
    logger,
  });
  peers.start({
    added: () => {},
    back: (peer) => backs.push(peer),
    retry: (peer) => retries.push(peer),
    removed: () => {},
    changed: () => {},
  });
  const peer = peers.live()[0] as PeerState;
  peers.contacted(peer, answer, undefined);
  return { clock, lines, retries, backs, peers, peer };
}

describe("peer table: refusals", () => {
  it("holds the peer, not its liveness, and its retry ends the hold even if early", () => {
    const { clock, lines, retries, peers, peer } = table();
    peers.failed(peer, "push", refusedByPeer());
    expect(peer.up).toBe(true);
    expect(peer.held(clock.now())).toBe(true);
    expect(lines).toEqual(["peer refuses"]);
    // A timer may fire a millisecond before its time: the retry must find the hold over.
    clock.fire(1);
    expect(retries).toEqual([peer]);
    expect(peer.held(clock.now())).toBe(false);
  });

  it("does not lengthen a hold for the rest of a window refused with it", () => {
    const { clock, peers, peer } = table();
    peers.failed(peer, "push", refusedByPeer());
    const until = peer.heldUntil;
    for (let i = 0; i < 3; i++) peers.failed(peer, "push", refusedByPeer());
    expect(peer.refusals.sent).toBe(1);
    expect(peer.heldUntil).toBe(until);
    // The next refusal after the hold doubles it.
    clock.fire();
    peers.failed(peer, "push", refusedByPeer());
    expect(peer.refusals.sent).toBe(2);
    expect(peer.heldUntil - clock.now()).toBe(2 * (until - 1_000_000));
  });

  it("ends a refusal only when its side passes, the hold once neither refuses, or on a return", () => {
    const { clock, lines, retries, peers, peer } = table();
    peers.failed(peer, "sync", new PeerLimitError("an entry an hour ahead"));
    // Refused by this node: syncs from the peer stop, not pushes to it.
    expect(peer.held(clock.now())).toBe(true);
    clock.fire();
    retries.length = 0;
    peers.failed(peer, "push", refusedByPeer());
    expect(peer.refusals).toEqual({ sent: 1, received: 1 });
    // One side passing ends that side only: the other still holds the peer.
    peers.accepted(peer, "sent");
    expect(peer.refusals).toEqual({ sent: 0, received: 1 });
    expect(peer.held(clock.now())).toBe(true);
    peers.accepted(peer, "received");
    expect(peer.held(clock.now())).toBe(false);
    // A return from down ends both, the hold and its retry.
    peers.failed(peer, "push", refusedByPeer());
    peers.failed(peer, "link", new Error("closed the link"));
    expect(peer.up).toBe(false);
    peers.contacted(peer, answer, undefined);
    expect(peer.refusals).toEqual({ sent: 0, received: 0 });
    expect(peer.held(clock.now())).toBe(false);
    const retried = retries.length;
    clock.fire();
    // Neither the hold's retry nor the link's runs: the peer answered.
    expect(retries).toHaveLength(retried);
    expect(lines).toEqual([
      "refusing a peer's entries",
      "peer refuses",
      "peer accepts again",
      "taking a peer's entries again",
      "peer refuses",
      "peer down",
      "peer up",
    ]);
  });

  it("takes a refusal from a down peer as its return: up, held, its refusals going on", () => {
    const { clock, lines, backs, peers, peer } = table();
    peers.failed(peer, "push", refusedByPeer());
    peers.failed(peer, "link", new Error("closed the link"));
    expect(peer.up).toBe(false);
    // Its link's retry probes it (a down peer is asked whatever its hold): it refuses again.
    clock.fire();
    peers.failed(peer, "sync", refusedByPeer());
    expect(peer.up).toBe(true);
    expect(backs).toEqual([peer]);
    expect(peer.held(clock.now())).toBe(true);
    expect(peer.refusals.sent).toBe(2);
    expect(lines).toEqual(["peer refuses", "peer down", "peer up"]);
  });

  it("takes a refusal from a down peer probed during its hold as its return, counting nothing", () => {
    const { clock, lines, backs, peers, peer } = table();
    peers.failed(peer, "push", refusedByPeer());
    peers.failed(peer, "link", new Error("closed the link"));
    // The link's retry (25-50 ms) comes long before the hold's (0.5-1 s).
    clock.advance(50);
    peers.failed(peer, "sync", refusedByPeer());
    expect([peer.up, peer.held(clock.now()), peer.refusals.sent]).toEqual([true, true, 1]);
    expect(backs).toEqual([peer]);
    expect(lines).toEqual(["peer refuses", "peer down", "peer up"]);
  });

  it("keeps a down peer down when this node refuses what it sent after the link broke", () => {
    const { lines, backs, peers, peer } = table();
    peers.failed(peer, "link", new Error("closed the link"));
    // A sync page taken before the link broke, refused by this node's full disk after it.
    peers.failed(peer, "sync", new StorageFullError("/data", "ENOSPC"));
    expect(peer.up).toBe(false);
    expect(peer.retry).toBeDefined();
    expect(backs).toEqual([]);
    expect(lines).toEqual(["peer down", "refusing a peer's entries"]);
  });

  it("starts the other side's refusal under the hold that runs: a push refused then stops pushes", () => {
    const { clock, lines, peers, peer } = table();
    peers.failed(peer, "sync", new PeerLimitError("an entry an hour ahead"));
    const until = peer.heldUntil;
    peers.failed(peer, "push", refusedByPeer());
    expect(peer.refusals).toEqual({ sent: 1, received: 1 });
    expect(peer.heldUntil).toBe(until);
    expect(peer.held(clock.now())).toBe(true);
    expect(lines).toEqual(["refusing a peer's entries", "peer refuses"]);
  });

  it("records no failure once stopped, nor of a peer no longer in the table", () => {
    const { lines, peers, peer } = table();
    // An exchange with a peer that left, then came back at the same address: another state.
    peers.failed(new PeerState(PEER), "link", new Error("b:1 left the membership"));
    expect(lines).toEqual([]);
    peers.stop();
    peers.failed(peer, "link", new Error("this node is stopping"));
    expect(peer.up).toBe(true);
    expect(lines).toEqual([]);
  });
});
