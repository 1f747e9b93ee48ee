// Size and speed of the peer codec (format 2, binary) against the v1 JSON format it replaced,
// on messages shaped like the convergence benchmark's: `npm run build:bench`, then
// node dist-bench/bench/codec.js      (prints a Markdown table; ~30 s)
import {
  isEntry,
  isNodeName,
  isOriginId,
  isSeq,
  type Digest,
  type Entry,
  type NodeName,
  type OriginId,
  type PostId,
  type UserId,
} from "../src/crdt/index.js";
import { binaryCodec } from "../src/replication/codec.js";
import type { PeerMessage } from "../src/replication/protocol.js";

/** The v1 wire format as it was: JSON objects, every entry whole, every reply a full vector. */
interface V1Message {
  readonly kind: PeerMessage["kind"];
  readonly node: NodeName;
  readonly origin: OriginId;
  readonly entries?: readonly Entry[];
  readonly vv?: Digest;
  readonly more?: boolean;
}

const v1 = {
  encode: (m: V1Message): Buffer =>
    Buffer.from(JSON.stringify(m.vv ? { ...m, vv: Object.fromEntries(m.vv) } : m), "utf8"),
  /** v1's guard: JSON.parse, then every field and entry checked and copied. */
  decode(bytes: Buffer, kind: PeerMessage["kind"]): V1Message {
    const m = JSON.parse(bytes.toString("utf8")) as Record<string, unknown>;
    if (m.kind !== kind || typeof m.node !== "string" || !isNodeName(m.node))
      throw new Error("bad");
    if (!isOriginId(m.origin)) throw new Error("bad origin");
    const out: { -readonly [K in keyof V1Message]: V1Message[K] } = {
      kind,
      node: m.node,
      origin: m.origin,
    };
    if (kind === "deltas" || kind === "sync-reply") {
      if (!Array.isArray(m.entries) || m.entries.length > 5000) throw new Error("bad entries");
      if (m.entries.some((e) => !isEntry(e))) throw new Error("bad entry");
      out.entries = (m.entries as Entry[]).map(({ origin, seq, post, user, ts, traceparent }) =>
        traceparent === undefined
          ? { origin, seq, post, user, ts }
          : { origin, seq, post, user, ts, traceparent },
      );
    }
    if (kind !== "deltas") {
      const vv = new Map<OriginId, number>();
      for (const [o, seq] of Object.entries(m.vv as Record<string, unknown>)) {
        if (!isOriginId(o) || !(isSeq(seq) || seq === 0)) throw new Error("bad vv");
        vv.set(o, seq);
      }
      out.vv = vv;
    }
    if (kind === "sync-reply") out.more = m.more === true;
    return out;
  },
};

// A seeded generator, so that every run measures the same bytes.
let state = 42;
const random = () => (state = (state * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
const hex = (n: number) =>
  Array.from({ length: n }, () => Math.floor(random() * 16).toString(16)).join("");

const ORIGINS = ["node1~2mz4k1q8x0c7v3bd", "node2~9d0s8f7g6h5j4k3l", "node3~1q2w3e4r5t6y7u8i"].map(
  (o) => o as OriginId,
);
const SENDER = { node: "node1" as NodeName, origin: ORIGINS[0] as OriginId };
const FULL_VV: Digest = new Map(ORIGINS.map((o, i) => [o, 123_456 + i * 1000]));

/** `n` entries of one origin from seq `from`, ~3 ms apart, 10% of them sampled. */
function run(origin: OriginId, from: number, n: number): Entry[] {
  let ts = 1_764_000_000_000;
  return Array.from({ length: n }, (_, i) => {
    ts += Math.floor(random() * 4);
    const like = {
      origin,
      seq: from + i,
      post: `load-${Math.floor(random() * 500)}` as PostId,
      user: `b-0-${123_456 + i}` as UserId,
      ts,
    };
    return random() < 0.1 ? { ...like, traceparent: `00-${hex(32)}-${hex(16)}-01` } : like;
  });
}

interface Case {
  readonly name: string;
  readonly entries: number;
  readonly old: V1Message;
  readonly now: PeerMessage;
}

function push(n: number): Case {
  const entries = run(SENDER.origin, 120_001, n);
  const message = { kind: "deltas", ...SENDER, entries } as const;
  return { name: `push of ${n}`, entries: n, old: message, now: message };
}

const page = [0, 1, 2].flatMap((i) => run(ORIGINS[i] as OriginId, 100_001, i === 2 ? 1666 : 1667));
const replySender = { node: "node2" as NodeName, origin: ORIGINS[1] as OriginId };
const cases: Case[] = [
  push(1),
  push(3),
  push(10),
  push(512),
  {
    name: "push reply",
    entries: 0,
    old: { kind: "deltas-reply", ...replySender, vv: FULL_VV },
    now: {
      kind: "deltas-reply",
      ...replySender,
      vv: new Map([[SENDER.origin, FULL_VV.get(SENDER.origin) ?? 0]]),
    },
  },
  {
    name: "sync request",
    entries: 0,
    old: { kind: "sync", ...SENDER, vv: FULL_VV },
    now: { kind: "sync", ...SENDER, vv: FULL_VV },
  },
  {
    name: "sync reply, converged",
    entries: 0,
    old: { kind: "sync-reply", ...replySender, entries: [], vv: FULL_VV, more: false },
    now: { kind: "sync-reply", ...replySender, entries: [], diff: new Map(), more: false },
  },
  {
    name: "sync reply, page of 5000",
    entries: page.length,
    old: { kind: "sync-reply", ...replySender, entries: page, vv: FULL_VV, more: true },
    now: {
      kind: "sync-reply",
      ...replySender,
      entries: page,
      diff: new Map(ORIGINS.map((o) => [o, 105_000])),
      more: true,
    },
  },
];

/**
 * Nanoseconds per call, in CPU time of this process (time on a shared machine when other work
 * runs is not counted), best of 15 rounds of ~50 ms.
 */
function time(fn: () => unknown): number {
  let best = Infinity;
  for (let round = 0; round < 15; round++) {
    let calls = 0;
    const start = process.cpuUsage();
    let spent = 0;
    while (spent < 50_000) {
      for (let i = 0; i < 10; i++) fn();
      calls += 10;
      const used = process.cpuUsage(start);
      spent = used.user + used.system;
    }
    best = Math.min(best, (spent * 1000) / calls);
  }
  return best;
}

const per = (value: number, c: Case) => value / Math.max(1, c.entries);
const fixed = (n: number, digits = 1) => n.toFixed(digits);
const lines = [
  "| message | v1 bytes | v2 bytes | v1 B/entry | v2 B/entry | encode ns/entry v1 → v2 | decode ns/entry v1 → v2 |",
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
];
for (const c of cases) {
  const oldBytes = v1.encode(c.old);
  const newBytes = binaryCodec.encode(c.now);
  const unit = c.entries > 0 ? "/entry" : "/message";
  const encodeOld = time(() => v1.encode(c.old));
  const encodeNew = time(() => binaryCodec.encode(c.now));
  const decodeOld = time(() => v1.decode(oldBytes, c.old.kind));
  const decodeNew = time(() => binaryCodec.decode(newBytes, c.now.kind));
  lines.push(
    `| ${c.name} | ${oldBytes.length} | ${newBytes.length} | ` +
      (c.entries > 0
        ? `${fixed(per(oldBytes.length, c))} | ${fixed(per(newBytes.length, c))} | `
        : "— | — | ") +
      `${fixed(per(encodeOld, c), 0)} → ${fixed(per(encodeNew, c), 0)}${unit === "/message" ? " (per message)" : ""} | ` +
      `${fixed(per(decodeOld, c), 0)} → ${fixed(per(decodeNew, c), 0)} |`,
  );
}
// What likes_gossip_bytes_total counts for one push: the request and its reply.
const reply = cases.find((c) => c.name === "push reply") as Case;
for (const n of [1, 3, 6, 10]) {
  const c = push(n);
  const old = v1.encode(c.old).length + v1.encode(reply.old).length;
  const now = binaryCodec.encode(c.now).length + binaryCodec.encode(reply.now).length;
  lines.push(
    `| push of ${n} + its reply, per entry | | | ${fixed(old / n)} | ${fixed(now / n)} | | |`,
  );
}
console.log(lines.join("\n"));
