import { describe, expect, it } from "vitest";
import { DnsMembership } from "../../src/replication/dns-membership.js";
import { silentLogger } from "../../src/telemetry/types.js";

describe("DNS membership", () => {
  it("turns the A records of a name into peer addresses on the peer port", async () => {
    const membership = new DnsMembership("localhost", 7946, silentLogger, new Set());
    await membership.start();
    membership.stop();
    expect(membership.peers()).toEqual(["127.0.0.1:7946"]);
  });

  it("skips this node's own addresses", async () => {
    const membership = new DnsMembership("peers", 7946, silentLogger, new Set(["10.0.0.1"]), () =>
      Promise.resolve(["10.0.0.1", "10.0.0.2"]),
    );
    await membership.start();
    membership.stop();
    expect(membership.peers()).toEqual(["10.0.0.2:7946"]);
  });

  it("keeps the last list when the name stops resolving", async () => {
    let answer: Promise<string[]> = Promise.resolve(["10.0.0.2", "10.0.0.1"]);
    const membership = new DnsMembership("peers", 7946, silentLogger, new Set(), () => answer);
    await membership.start();
    membership.stop();
    expect(membership.peers()).toEqual(["10.0.0.1:7946", "10.0.0.2:7946"]);
    answer = Promise.reject(new Error("ENOTFOUND peers"));
    await membership.refresh();
    expect(membership.peers()).toEqual(["10.0.0.1:7946", "10.0.0.2:7946"]);
  });

  it("starts with no peers, not a failure, while the name does not exist yet", async () => {
    // A headless Service has no records until its first pod is ready: the first one starts alone.
    let lookups = 0;
    const membership = new DnsMembership("peers", 7946, silentLogger, new Set(), () => {
      lookups++;
      return Promise.reject(
        Object.assign(new Error("queryA ENOTFOUND peers"), { code: "ENOTFOUND" }),
      );
    });
    await membership.start();
    membership.stop();
    expect(lookups).toBe(1);
    expect(membership.peers()).toEqual([]);
  });
});
