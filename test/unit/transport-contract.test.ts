// The Transport port's contract, run against each adapter: the simulated network of test/sim and
// the peer link (TCP, framed, authenticated). A push and a sync come back as the peer answered
// them; a peer that cannot be reached or fails to answer is a rejection.
import net, { type AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import type { NodeName, OriginId } from "../../src/crdt/index.js";
import { binaryCodec } from "../../src/replication/codec.js";
import { LinkTransport, PeerRequestError } from "../../src/link/client.js";
import type { PeerAddress, Transport } from "../../src/replication/ports.js";
import type { PeerReply, PeerRequest } from "../../src/replication/protocol.js";
import { SimNetwork } from "../sim/network.js";
import { Scheduler, seededRandom } from "../sim/scheduler.js";
import { SECRET, entry, sender, startPeerB } from "./transport-fixtures.js";

type Handler = (request: PeerRequest) => Promise<PeerReply>;

/** One adapter of the Transport port, with a peer that answers through `handler`. */
interface TransportHarness {
  readonly transport: Transport;
  readonly peer: PeerAddress;
  readonly unreachable: PeerAddress;
  /** How this adapter rejects a send to an unreachable peer, and to one whose handler fails. */
  readonly failure: {
    readonly name: string;
    readonly unreachable: RegExp;
    readonly failing: RegExp;
  };
  /** Settles a send: virtual time must run for the simulated network. */
  settle<T>(pending: Promise<T>): Promise<T>;
  close(): Promise<void>;
}

const adapters: Record<string, (handler: Handler) => Promise<TransportHarness>> = {
  "simulated network": (handler) => {
    const scheduler = new Scheduler();
    const network = new SimNetwork(scheduler, seededRandom(1));
    const self = { address: "a:1", alive: true, life: 1, handle: handler };
    network.attach(self);
    network.attach({ address: "b:1", alive: true, life: 1, handle: handler });
    network.partition([["a:1", "b:1"], ["c:1"]]);
    network.attach({ address: "c:1", alive: true, life: 1, handle: handler });
    return Promise.resolve({
      transport: network.transportFor(self),
      peer: "b:1",
      unreachable: "c:1",
      // A simulated peer that cannot answer is silent: the sender's timeout says so.
      failure: { name: "Error", unreachable: /^c:1 timed out$/, failing: /^b:1 timed out$/ },
      settle: async <T>(pending: Promise<T>) => {
        // Observed at once, so that a rejection is never left unhandled while time runs.
        let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
        pending.then(
          (value) => (outcome = { ok: true, value }),
          (error: unknown) => (outcome = { ok: false, error }),
        );
        while (!outcome) await scheduler.runUntil(scheduler.now() + 100);
        if (!outcome.ok) throw outcome.error;
        return outcome.value;
      },
      close: () => Promise.resolve(),
    });
  },
  "peer link (TCP, framed, authenticated)": async (handler) => {
    const { server, port } = await startPeerB({ handle: handler });
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const unreachable = `127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    const transport = new LinkTransport(SECRET, "a", binaryCodec);
    return {
      transport,
      peer: `127.0.0.1:${port}`,
      unreachable,
      failure: {
        name: PeerRequestError.name,
        unreachable: /unreachable: connect ECONNREFUSED/,
        failing: /refused: internal: /,
      },
      settle: (pending) => pending,
      close: async () => {
        transport.close();
        await server.close();
      },
    };
  },
};

for (const [name, make] of Object.entries(adapters)) {
  describe(`transport contract: ${name}`, () => {
    it("delivers a push as sent and returns the peer's reply", async () => {
      const seen: PeerRequest[] = [];
      const h = await make((request) => {
        seen.push(request);
        return Promise.resolve({
          kind: "deltas-reply",
          node: "b" as NodeName,
          origin: "b~2" as OriginId,
          vv: new Map([["a~1" as OriginId, 1]]),
        });
      });
      try {
        const reply = await h.settle(
          h.transport.send(h.peer, { kind: "deltas", ...sender, entries: [entry] }),
        );
        expect(seen).toEqual([{ kind: "deltas", node: "a", origin: "a~1", entries: [entry] }]);
        expect(reply).toEqual({
          kind: "deltas-reply",
          node: "b" as NodeName,
          origin: "b~2" as OriginId,
          vv: new Map([["a~1", 1]]),
        });
      } finally {
        await h.close();
      }
    });

    it("answers a sync with a page of entries and the peer's vector", async () => {
      const h = await make(() =>
        Promise.resolve({
          kind: "sync-reply",
          node: "b" as NodeName,
          origin: "b~2" as OriginId,
          entries: [entry],
          diff: new Map([["a~1" as OriginId, 1]]),
          more: true,
        }),
      );
      try {
        const reply = await h.settle(
          h.transport.send(h.peer, { kind: "sync", ...sender, vv: new Map() }),
        );
        expect(reply).toMatchObject({ kind: "sync-reply", entries: [entry], more: true });
      } finally {
        await h.close();
      }
    });

    it("rejects when the peer cannot be reached or fails to answer", async () => {
      const h = await make(() => Promise.reject(new Error("handler failed")));
      try {
        await expect(
          h.settle(h.transport.send(h.unreachable, { kind: "sync", ...sender, vv: new Map() })),
        ).rejects.toMatchObject({
          name: h.failure.name,
          message: expect.stringMatching(h.failure.unreachable),
        });
        await expect(
          h.settle(h.transport.send(h.peer, { kind: "sync", ...sender, vv: new Map() })),
        ).rejects.toMatchObject({
          name: h.failure.name,
          message: expect.stringMatching(h.failure.failing),
        });
      } finally {
        await h.close();
      }
    });
  });
}
