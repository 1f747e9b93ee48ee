// Peers from DNS: the membership of a node deployed behind a Kubernetes headless Service.
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
    private readonly ownAddresses: ReadonlySet<string> = localAddresses(),
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

  private async refresh(): Promise<void> {
    let addresses: string[];
    try {
      // getaddrinfo, like every other client in the pod: it honours search domains and /etc/hosts.
      addresses = (await lookup(this.name, { all: true, family: 4 })).map((a) => a.address);
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

function localAddresses(): Set<string> {
  const own = new Set<string>();
  for (const list of Object.values(networkInterfaces()))
    for (const info of list ?? []) own.add(info.address);
  if (process.env.K8S_POD_IP) own.add(process.env.K8S_POD_IP);
  return own;
}
