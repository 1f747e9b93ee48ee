// The client half of the peer link, the adapter of the replication Transport port: one
// long-lived, authenticated connection to each peer this node sends to, on which requests are
// pipelined (several in flight, answered in any order by number). A link that breaks fails what
// is in flight and is opened again by the next send; the replication core's retry backoff paces that.
import type { PeerAddress } from "../config.js";
import type { Codec } from "../replication/codec.js";
import type { OutgoingFault } from "../replication/faults.js";
import type { Transport } from "../replication/ports.js";
import type { PeerRequest, ReplyTo } from "../replication/protocol.js";
import { markFault } from "../telemetry/spans.js";
import { noMetrics, type Metrics } from "../telemetry/types.js";
import { ClientLink, PeerRequestError, type LinkEvents } from "./client-link.js";

export { MAX_UNANSWERED_BYTES, PeerRequestError, type LinkEvents } from "./client-link.js";

// A peer that has not answered in this long is treated as down and its link closed: a push or
// a page of a sync takes milliseconds on a healthy link.
const REQUEST_TIMEOUT_MS = 5_000;

/** The faults of LIKES_FAULTS=enabled, as the link asks them (replication/faults.ts). */
export interface LinkFaults {
  /** What happens to a message to `peer` (its node name; undefined before its first answer). */
  outgoing(peer: string | undefined): OutgoingFault;
  /** Whether links `peer` opens to this node are refused. */
  refusesFrom(peer: string): boolean;
}

/** The longest a dropped message's send takes to fail: a lost message is seen as a late one. */
const DROP_WAIT_MS = 50;

/**
 * A send that failed because of an injected fault (LIKES_FAULTS): as a network failure, it
 * carries no code (a code says the peer answered, and refused: replication/ports.ts).
 */
export class FaultError extends PeerRequestError {}

export class LinkTransport implements Transport {
  private readonly links = new Map<PeerAddress, ClientLink>();
  /** Closed for good: a send after close() would open a link again. */
  private closed = false;
  /** Each peer's node name, from its handshake answer. */
  private readonly names = new Map<PeerAddress, string>();

  constructor(
    private readonly secret: string,
    private readonly node: string,
    private readonly codec: Codec,
    private readonly metrics: Pick<Metrics, "peerMessage" | "peerBytes"> = noMetrics,
    private readonly events: LinkEvents = { down: () => {}, clockSkew: () => {} },
    private readonly timeoutMs = REQUEST_TIMEOUT_MS,
    private readonly faults: LinkFaults | undefined = undefined,
  ) {}

  async send<R extends PeerRequest>(peer: PeerAddress, request: R): Promise<ReplyTo<R>> {
    if (this.faults) await this.injectFaults(peer, request.kind);
    if (this.closed) throw new PeerRequestError("this node is stopping");
    let link = this.links.get(peer);
    if (!link || link.closed) {
      link = new ClientLink(
        peer,
        this.secret,
        this.node,
        this.codec,
        this.metrics,
        this.timeoutMs,
        {
          down: (_, error) => {
            if (this.links.get(peer) === link) this.links.delete(peer);
            this.events.down(peer, error);
          },
          clockSkew: (_, skewMs) => this.events.clockSkew(peer, skewMs),
        },
        (name) => this.names.set(peer, name),
      );
      this.links.set(peer, link);
    }
    try {
      const reply = (await link.request(request)) as ReplyTo<R>;
      this.metrics.peerMessage(request.kind, "ok");
      return reply;
    } catch (error) {
      this.metrics.peerMessage(request.kind, "error");
      throw error;
    }
  }

  /** Delays a message, or fails its send, as the faults set for its peer say. */
  private async injectFaults(peer: PeerAddress, kind: PeerRequest["kind"]): Promise<void> {
    const name = this.names.get(peer);
    const fault = (this.faults as LinkFaults).outgoing(name);
    const what = fault.cut ? "cut" : fault.drop ? "dropped" : fault.delayMs > 0 ? "delayed" : "";
    if (what === "") return;
    markFault(what, { delay_ms: fault.delayMs });
    // A dropped message fails as a lost one would, late (but not as late as a timeout).
    const wait = fault.cut
      ? 0
      : fault.drop
        ? Math.min(fault.delayMs || DROP_WAIT_MS, DROP_WAIT_MS)
        : fault.delayMs;
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (fault.cut || fault.drop) {
      this.metrics.peerMessage(kind, "error");
      throw new FaultError(`${what} by a fault (LIKES_FAULTS) on the link to ${name ?? peer}`);
    }
  }

  /** Bytes held for a peer's link: its unanswered requests (what MAX_UNANSWERED_BYTES bounds). */
  unanswered(peer: PeerAddress): number {
    return this.links.get(peer)?.unansweredBytes ?? 0;
  }

  /** The peer left the membership: its link closes, and its name is forgotten. */
  forget(peer: PeerAddress): void {
    this.names.delete(peer);
    const link = this.links.get(peer);
    this.links.delete(peer);
    link?.close(new PeerRequestError(`${peer} left the membership`));
  }

  /** Fails what is in flight and every send after. */
  close(): void {
    this.closed = true;
    for (const link of this.links.values())
      link.close(new PeerRequestError("this node is stopping"));
    this.links.clear();
  }
}
