// Membership from DNS: the peers are the addresses a name resolves to (Kubernetes: the headless
// peer Service), re-resolved every few seconds.
import { lookup } from "node:dns/promises";
import { networkInterfaces } from "node:os";
import { joinHostPort } from "../config.js";
import type { Logger } from "../telemetry/types.js";
import type { Membership, PeerAddress } from "./ports.js";

export const DNS_REFRESH_MS = 5_000;

/**
 * Peers from the A records of a name (a Kubernetes headless Service with
 * publishNotReadyAddresses), re-resolved every 5 s; this node's own addresses are skipped.
 */
export class DnsMembership implements Membership {
  private current: readonly PeerAddress[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly name: string,
    private readonly port: number,
    private readonly logger: Logger,
    private readonly ownAddresses: ReadonlySet<string>,
    private readonly resolve: (name: string) => Promise<string[]> = resolveIPv4,
  ) {}

  peers(): readonly PeerAddress[] {
    return this.current;
  }

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), DNS_REFRESH_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Resolves the name again now; on failure the last list stays. */
  async refresh(): Promise<void> {
    let addresses: string[];
    try {
      addresses = await this.resolve(this.name);
    } catch (error) {
      // NXDOMAIN while the Service has no endpoints yet is normal at start; keep the last list.
      this.logger.debug("peer DNS lookup failed", { name: this.name, error: String(error) });
      return;
    }
    const next = [...new Set(addresses)]
      .filter((ip) => !this.ownAddresses.has(ip))
      .sort()
      .map((ip) => joinHostPort(ip, this.port));
    if (next.join() === this.current.join()) return;
    this.logger.info("peers changed", { peers: next });
    this.current = next;
  }
}

/** This host's addresses, and the pod's (K8S_POD_IP) when it has one. */
export function localAddresses(podIp: string | undefined): Set<string> {
  const own = new Set<string>();
  for (const list of Object.values(networkInterfaces()))
    for (const info of list ?? []) own.add(info.address);
  if (podIp !== undefined) own.add(podIp);
  return own;
}

// getaddrinfo, like every other client in the pod: it honours search domains and /etc/hosts.
async function resolveIPv4(name: string): Promise<string[]> {
  return (await lookup(name, { all: true, family: 4 })).map((a) => a.address);
}
