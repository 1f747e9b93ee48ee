import { binaryCodec } from "../../src/replication/codec.js";
import type { PeerAddress, Random, Transport } from "../../src/replication/ports.js";
import {
  replyKindOf,
  type PeerReply,
  type PeerRequest,
  type ReplyTo,
} from "../../src/replication/protocol.js";
import type { Scheduler } from "./scheduler.js";

/** A node as the network sees it: reachable while `alive`, answering through `handle`. */
export interface Endpoint {
  readonly address: PeerAddress;
  alive: boolean;
  /** Bumped at every crash: replies to an older life are dropped. */
  life: number;
  handle(request: PeerRequest): Promise<PeerReply>;
}

export interface NetworkFaults {
  minDelayMs: number;
  maxDelayMs: number;
  loss: number;
  duplication: number;
}

export const HEALTHY: NetworkFaults = { minDelayMs: 1, maxDelayMs: 3, loss: 0, duplication: 0 };
const TIMEOUT_MS = 2000;

/**
 * An in-memory network in virtual time: every message is delayed at random (so reordered),
 * and may be lost, duplicated, or cut by a partition. Messages go through the real codec, so
 * the guards see exactly what a real peer would send.
 */
export class SimNetwork {
  private readonly endpoints = new Map<PeerAddress, Endpoint>();
  /** Partition group of each address; messages cross only within a group. */
  private groups = new Map<PeerAddress, number>();
  faults: NetworkFaults = HEALTHY;
  messages = 0;
  /** Answers to a push that carried the answering node's own entries (rides, pusher.ts). */
  rides = 0;
  /** Pushes that acknowledged rides. Both counted when delivered. */
  rideAcks = 0;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly random: Random,
  ) {}

  attach(endpoint: Endpoint): void {
    this.endpoints.set(endpoint.address, endpoint);
  }

  partition(groups: readonly (readonly PeerAddress[])[]): void {
    this.groups = new Map(
      groups.flatMap((group, i) => group.map((address) => [address, i] as const)),
    );
  }

  heal(): void {
    this.groups = new Map();
    this.faults = HEALTHY;
  }

  transportFor(from: Endpoint): Transport {
    return {
      send: <R extends PeerRequest>(to: PeerAddress, request: R) =>
        this.send(from, from.life, to, request) as Promise<ReplyTo<R>>,
    };
  }

  private send(
    from: Endpoint,
    life: number,
    to: PeerAddress,
    request: PeerRequest,
  ): Promise<PeerReply> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const timeout = this.scheduler.setTimeout(() => {
        settled = true;
        reject(new Error(`${to} timed out`));
      }, TIMEOUT_MS);
      const replyKind = replyKindOf(request.kind);
      const deliver = () => {
        const target = this.endpoints.get(to);
        if (!target || !target.alive || !this.connected(from.address, to)) return;
        const targetLife = target.life;
        const decoded = binaryCodec.decode(
          binaryCodec.encode(request),
          request.kind,
        ) as PeerRequest;
        if (decoded.kind === "deltas" && (decoded.acks?.size ?? 0) > 0) this.rideAcks++;
        target.handle(decoded).then(
          (reply) => {
            if (target.life !== targetLife) return;
            const ride = reply.kind === "deltas-reply" && (reply.entries?.length ?? 0) > 0;
            const bytes = binaryCodec.encode(reply);
            this.transmit(() => {
              if (settled || !from.alive || from.life !== life || !this.connected(to, from.address))
                return;
              settled = true;
              timeout.cancel();
              if (ride) this.rides++;
              resolve(binaryCodec.decode(bytes, replyKind) as PeerReply);
            });
          },
          () => {},
        );
      };
      this.transmit(deliver);
    });
  }

  /** Schedules one delivery, maybe lost, maybe twice. */
  private transmit(deliver: () => void): void {
    this.messages++;
    const { loss, duplication } = this.faults;
    if (this.random() < loss) return;
    this.scheduler.setTimeout(deliver, this.delay());
    if (this.random() < duplication) this.scheduler.setTimeout(deliver, this.delay());
  }

  private delay(): number {
    const { minDelayMs, maxDelayMs } = this.faults;
    return minDelayMs + this.random() * (maxDelayMs - minDelayMs);
  }

  private connected(a: PeerAddress, b: PeerAddress): boolean {
    return (this.groups.get(a) ?? -1) === (this.groups.get(b) ?? -1);
  }
}
