// The node's configuration: defaults and the environment, validated once into a frozen object;
// a bad value stops the node at start with the variable's name (README, "Configuration").
import { hostname } from "node:os";
import { isNodeName, type NodeName } from "./crdt/ids.js";

/**
 * A peer's replication address, `host:port` (`[v6]:port` for IPv6), the one type of it: made by
 * `peerAddress` (LIKES_PEERS) and `joinHostPort` (DNS membership). The replication core uses it
 * as a key and in logs; the HTTP client splits it with `splitHostPort`.
 */
export type PeerAddress = string;

export type LogLevel = "error" | "warn" | "info" | "debug";

/** A node's whole configuration, read once from the environment and frozen. */
export interface Config {
  readonly nodeName: NodeName;
  readonly host: string;
  readonly httpPort: number;
  readonly peerPort: number;
  readonly adminPort: number;
  readonly peers: readonly PeerAddress[];
  readonly peerDns: string | undefined;
  readonly dataDir: string;
  readonly clusterSecret: string | undefined;
  readonly pushMs: number;
  readonly syncMs: number;
  readonly fsync: "normal" | "always";
  /** `refuse`: a corrupt database stops the node; `refill`: it is moved aside, the node refills. */
  readonly onCorruption: "refuse" | "refill";
  readonly writeTimeoutMs: number;
  /**
   * A node that starts with an empty data directory installs a snapshot from a peer holding
   * more entries than this, instead of replaying them; undefined (`off`): never.
   */
  readonly snapshotThreshold: number | undefined;
  /** Origins (node incarnations) a node holds at most; a peer's message past it is refused. */
  readonly maxOrigins: number;
  /** New traces a node samples per second unless OTEL_TRACES_SAMPLER chooses a sampler. */
  readonly tracesPerSecond: number;
  readonly logLevel: LogLevel;
  /** OTEL_SDK_DISABLED=true: no SDK, no instrumentation, no spans. */
  readonly tracingDisabled: boolean;
  /** OTEL_TRACES_SAMPLER is set: the SDK's standard sampler replaces the rate limit. */
  readonly samplerFromEnv: boolean;
  /** The pod's identity from the Kubernetes downward API (K8S_*), as resource attributes. */
  readonly kubernetes: Readonly<Record<string, string>>;
  /** K8S_POD_IP: this node's own address, never one of its peers under DNS membership. */
  readonly podIp: string | undefined;
  /** LIKES_FAULTS=enabled: the admin port's /faults injects faults in the peer link (tests only). */
  readonly faults: boolean;
}

/** A bad configuration value: the message names the variable, and the node does not start. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable} ${problem}`);
  }
}

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const MIN_SECRET_LENGTH = 16;
/**
 * Entries a peer must hold beyond an empty node's for a snapshot: below it, replaying the log by
 * anti-entropy takes a second or two (the benchmark's catch-up: 5,000,000 likes in 35–70 s).
 */
export const DEFAULT_SNAPSHOT_THRESHOLD = 100_000;
/** LIKES_MAX_ORIGINS unset: the replication core's limit on origins held (limits.ts). */
export const DEFAULT_MAX_ORIGINS = 10_000;
/**
 * LIKES_MAX_ORIGINS at most: a new link's first sync names every origin in one frame (1 MiB),
 * about 33 bytes an origin with ids of 25 characters (`likes-12~` and an incarnation):
 * 25,000 take 0.83 MB. Ids of longer node names fit fewer (100 bytes an origin at the longest).
 */
export const MAX_ORIGINS_LIMIT = 25_000;
const MAX_SEQ_TOTAL = Number.MAX_SAFE_INTEGER - 1;

type Env = Readonly<Record<string, string | undefined>>;

export function loadConfig(env: Env, defaultName: string = hostname()): Config {
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === "" ? undefined : value;
  };

  const nodeName = read("LIKES_NODE_NAME") ?? defaultName;
  if (!isNodeName(nodeName))
    throw new ConfigError(
      "LIKES_NODE_NAME",
      `must be 1-63 characters of A-Z a-z 0-9 . _ - starting with a letter or digit (got ${JSON.stringify(nodeName)})`,
    );

  const host = read("LIKES_HOST") ?? "0.0.0.0";
  if (!isHost(host))
    throw new ConfigError(
      "LIKES_HOST",
      `must be an IP address or host name (got ${JSON.stringify(host)})`,
    );

  const httpPort = port(read, "LIKES_HTTP_PORT", 8080);
  const peerPort = port(read, "LIKES_PEER_PORT", 7946);
  const adminPort = port(read, "LIKES_ADMIN_PORT", 9464);
  const fixed = [httpPort, peerPort, adminPort].filter((p) => p !== 0);
  if (new Set(fixed).size !== fixed.length)
    throw new ConfigError(
      "LIKES_PEER_PORT",
      `must differ from LIKES_HTTP_PORT and LIKES_ADMIN_PORT (got ${httpPort}, ${peerPort}, ${adminPort})`,
    );

  const peers = (read("LIKES_PEERS") ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map((s) => peerAddress(s));
  const peerDns = read("LIKES_PEER_DNS");
  if (peerDns !== undefined && !HOSTNAME.test(peerDns))
    throw new ConfigError("LIKES_PEER_DNS", `must be a DNS name (got ${JSON.stringify(peerDns)})`);

  const clusterSecret = read("LIKES_CLUSTER_SECRET");
  if (clusterSecret !== undefined && clusterSecret.length < MIN_SECRET_LENGTH)
    throw new ConfigError(
      "LIKES_CLUSTER_SECRET",
      `must be at least ${MIN_SECRET_LENGTH} characters`,
    );
  if (clusterSecret === undefined && (peers.length > 0 || peerDns !== undefined))
    throw new ConfigError(
      "LIKES_CLUSTER_SECRET",
      "is required when LIKES_PEERS or LIKES_PEER_DNS is set",
    );

  const fsync = read("LIKES_FSYNC") ?? "normal";
  if (fsync !== "normal" && fsync !== "always")
    throw new ConfigError("LIKES_FSYNC", `must be normal or always (got ${JSON.stringify(fsync)})`);

  const onCorruption = read("LIKES_ON_CORRUPTION") ?? "refuse";
  if (onCorruption !== "refuse" && onCorruption !== "refill")
    throw new ConfigError(
      "LIKES_ON_CORRUPTION",
      `must be refuse or refill (got ${JSON.stringify(onCorruption)})`,
    );

  const faults = read("LIKES_FAULTS") ?? "disabled";
  if (faults !== "enabled" && faults !== "disabled")
    throw new ConfigError(
      "LIKES_FAULTS",
      `must be enabled or disabled (got ${JSON.stringify(faults)})`,
    );

  const logLevel = read("LOG_LEVEL") ?? "info";
  if (!["error", "warn", "info", "debug"].includes(logLevel))
    throw new ConfigError(
      "LOG_LEVEL",
      `must be one of error, warn, info, debug (got ${JSON.stringify(logLevel)})`,
    );

  return Object.freeze({
    nodeName,
    host,
    httpPort,
    peerPort,
    adminPort,
    peers: Object.freeze(peers),
    peerDns,
    dataDir: read("LIKES_DATA_DIR") ?? "./data",
    clusterSecret,
    pushMs: integer(read, "LIKES_PUSH_MS", 4, 1, 60_000),
    syncMs: integer(read, "LIKES_SYNC_MS", 1000, 10, 3_600_000),
    fsync,
    onCorruption,
    writeTimeoutMs: integer(read, "LIKES_WRITE_TIMEOUT_MS", 2000, 1, 600_000),
    tracesPerSecond: integer(read, "LIKES_TRACES_PER_SECOND", 10, 1, 1_000_000),
    snapshotThreshold:
      read("LIKES_SNAPSHOT_THRESHOLD") === "off"
        ? undefined
        : integer(
            read,
            "LIKES_SNAPSHOT_THRESHOLD",
            DEFAULT_SNAPSHOT_THRESHOLD,
            0,
            MAX_SEQ_TOTAL,
            "or off",
          ),
    maxOrigins: integer(read, "LIKES_MAX_ORIGINS", DEFAULT_MAX_ORIGINS, 1, MAX_ORIGINS_LIMIT),
    logLevel: logLevel as LogLevel,
    tracingDisabled: read("OTEL_SDK_DISABLED")?.toLowerCase() === "true",
    samplerFromEnv: read("OTEL_TRACES_SAMPLER") !== undefined,
    kubernetes: Object.freeze(kubernetesAttributes(read)),
    podIp: read("K8S_POD_IP"),
    faults: faults === "enabled",
  });
}

function integer(
  read: (name: string) => string | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
  otherwise = "",
): number {
  const raw = read(name);
  if (raw === undefined) return fallback;
  const value = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max)
    throw new ConfigError(
      name,
      `must be an integer from ${min} to ${max}${otherwise === "" ? "" : ` ${otherwise}`} (got ${JSON.stringify(raw)})`,
    );
  return value;
}

function port(read: (name: string) => string | undefined, name: string, fallback: number): number {
  return integer(read, name, fallback, 0, 65535);
}

function isHost(host: string): boolean {
  return IPV4.test(host) || HOSTNAME.test(host) || /^[0-9a-fA-F:]+$/.test(host);
}

/** Parses `host:port` or `[v6]:port`. */
export function peerAddress(text: string): PeerAddress {
  const match = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(text);
  const host = match?.[1]?.replace(/^\[|\]$/g, "");
  const portNumber = Number(match?.[2]);
  if (!host || !isHost(host) || !(portNumber >= 1 && portNumber <= 65535))
    throw new ConfigError(
      "LIKES_PEERS",
      `must be a comma-separated list of host:port (got ${JSON.stringify(text)})`,
    );
  return joinHostPort(host, portNumber);
}

export function joinHostPort(host: string, port: number): PeerAddress {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

export function splitHostPort(address: PeerAddress): { host: string; port: number } {
  const cut = address.lastIndexOf(":");
  return {
    host: address.slice(0, cut).replace(/^\[|\]$/g, ""),
    port: Number(address.slice(cut + 1)),
  };
}

/** Downward-API values a Kubernetes pod spec passes in, named as OTel resource attributes. */
function kubernetesAttributes(read: (name: string) => string | undefined): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const [attribute, variable] of [
    ["k8s.pod.name", "K8S_POD_NAME"],
    ["k8s.namespace.name", "K8S_NAMESPACE_NAME"],
    ["k8s.node.name", "K8S_NODE_NAME"],
    ["k8s.pod.ip", "K8S_POD_IP"],
  ] as const) {
    const value = read(variable);
    if (value !== undefined) attributes[attribute] = value;
  }
  return attributes;
}
