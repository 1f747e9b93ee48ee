import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Entry, NodeName, OriginId, PostId, UserId } from "../../src/crdt/index.js";
import { binaryCodec } from "../../src/replication/codec.js";
import { TestCluster, clusterView } from "../support/cluster.js";
import { signed } from "../support/peer.js";
import { countOf } from "../support/process.js";

let cluster: TestCluster;
let peerUrl: string;
beforeAll(async () => {
  cluster = await TestCluster.start(1);
  peerUrl = `http://127.0.0.1:${cluster.node(0).ports?.peer}`;
});
afterAll(() => cluster.stop());

/**
 * An intruder of its own per test (origin, post): what one test sends, even the push it gets
 * applied, is invisible to the checks of another, so the tests pass in any order.
 */
function intruderFor(name: string) {
  const origin = `${name}~abc` as OriginId;
  const post = `target-${name}` as PostId;
  const entry: Entry = { origin, seq: 1, post, user: "mallory" as UserId, ts: 1_700_000_000_000 };
  const sender = { node: name as NodeName, origin };
  const push = (...entries: Entry[]) => binaryCodec.encode({ kind: "deltas", ...sender, entries });
  return {
    entry,
    sender,
    push,
    deltas: push(entry),
    /** Nothing this intruder sent was applied. */
    unchanged: async (): Promise<void> => {
      expect(await countOf(cluster.urls[0]!, post)).toBe(0);
      expect((await clusterView(cluster.node(0).adminUrl)).vv).not.toHaveProperty(origin);
    },
  };
}

async function send(
  path: string,
  body: Buffer,
  headers: Record<string, string>,
  contentType = binaryCodec.contentType,
): Promise<{ status: number; body: unknown; bytes: Buffer }> {
  const res = await fetch(`${peerUrl}${path}`, {
    method: "POST",
    headers: { "content-type": contentType, ...headers },
    body,
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  const json = res.headers.get("content-type")?.startsWith("application/json") === true;
  return { status: res.status, body: json ? JSON.parse(bytes.toString()) : undefined, bytes };
}

describe("the peer port", () => {
  it("refuses unsigned, forged and stale requests with 401 and changes nothing", async () => {
    const { deltas, push, entry, unchanged } = intruderFor("forger");
    const path = "/peer/v2/deltas";
    const cases: Record<string, Record<string, string>> = {
      unsigned: {},
      "wrong secret": signed(path, deltas, { secret: "not-the-cluster-secret-at-all" }),
      "signed for another body": signed(path, push({ ...entry, user: "eve" as UserId })),
      "signed for another path": signed("/peer/v2/sync", deltas),
      "stale by 60 s": signed(path, deltas, { skewMs: -60_000 }),
      "from 60 s in the future": signed(path, deltas, { skewMs: 60_000 }),
      "garbage signature": { "x-likes-timestamp": String(Date.now()), "x-likes-signature": "zz" },
    };
    for (const [name, headers] of Object.entries(cases)) {
      const res = await send(path, deltas, headers);
      expect(res.status, name).toBe(401);
      expect(res.body).toMatchObject({ error: { code: "unauthorized" } });
    }
    await unchanged();
  });

  it("rejects signed but malformed messages with 400 and changes nothing", async () => {
    const { deltas, push, entry, sender, unchanged } = intruderFor("malformer");
    const bodies: Buffer[] = [
      Buffer.from("{not a message"),
      Buffer.from(JSON.stringify({ kind: "deltas", ...sender, entries: [entry] })),
      binaryCodec.encode({ kind: "sync", ...sender, vv: new Map() }),
      Buffer.concat([deltas, Buffer.of(0)]),
      deltas.subarray(0, deltas.length - 1),
      push(entry, { ...entry, seq: 2, post: "" as PostId }),
      push({ ...entry, user: "a\u0000b" as UserId }),
      binaryCodec.encode({
        kind: "deltas",
        node: "x" as NodeName,
        origin: "no-tilde" as OriginId,
        entries: [],
      }),
    ];
    for (const body of bodies) {
      const res = await send("/peer/v2/deltas", body, signed("/peer/v2/deltas", body));
      expect(res.status, body.toString("hex")).toBe(400);
      expect(res.body).toMatchObject({ error: { code: "malformed" } });
    }
    const sync = binaryCodec.encode({ kind: "sync", ...sender, vv: new Map() });
    const badSync = sync.subarray(0, sync.length - 1);
    expect((await send("/peer/v2/sync", badSync, signed("/peer/v2/sync", badSync))).status).toBe(
      400,
    );
    const json = await send(
      "/peer/v2/deltas",
      deltas,
      signed("/peer/v2/deltas", deltas),
      "application/json",
    );
    expect(json.status).toBe(415);
    await unchanged();
  });

  it("tells a peer that speaks protocol v1 to upgrade, and changes nothing", async () => {
    const { entry, sender, unchanged } = intruderFor("elder");
    const v1 = "/peer/v1/deltas";
    const body = Buffer.from(JSON.stringify({ kind: "deltas", ...sender, entries: [entry] }));
    const res = await send(v1, body, signed(v1, body), "application/json");
    expect(res.status).toBe(410);
    expect(res.body).toMatchObject({
      error: { code: "protocol_version_unsupported", message: expect.stringMatching(/v2/) },
    });
    await unchanged();
  });

  it("refuses a query string with 400, the signature covering the path only", async () => {
    const { deltas, unchanged } = intruderFor("querier");
    // Signed for the path; the query would ride along unsigned if it were served.
    const res = await send("/peer/v2/deltas?x=1", deltas, signed("/peer/v2/deltas", deltas));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: { code: "invalid_query" } });
    await unchanged();
  });

  it("refuses a Content-Encoding with 415 rather than reading it as the message", async () => {
    const { deltas, unchanged } = intruderFor("encoder");
    const res = await send("/peer/v2/deltas", deltas, {
      ...signed("/peer/v2/deltas", deltas),
      "content-encoding": "gzip",
    });
    expect(res.status).toBe(415);
    expect(res.body).toMatchObject({ error: { code: "unsupported_media_type" } });
    await unchanged();
  });

  it("answers 401 to an unsigned 16 MiB push before its body is sent", async () => {
    // Only the head and 1 KiB of the body go out: an answer proves the node did not wait for the
    // rest, and the connection is closed rather than read to its end.
    const { status, closed } = await new Promise<{ status: number; closed: boolean }>(
      (resolve, reject) => {
        const req = request(`${peerUrl}/peer/v2/deltas`, {
          method: "POST",
          headers: {
            "content-type": binaryCodec.contentType,
            "content-length": String(16 * 1024 * 1024),
          },
        });
        req.on("response", (res) => {
          res.resume();
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, closed: res.headers.connection === "close" }),
          );
        });
        req.on("error", reject);
        req.setTimeout(5_000, () => req.destroy(new Error("no answer before the body was sent")));
        req.write(Buffer.alloc(1024));
      },
    );
    expect(status).toBe(401);
    expect(closed).toBe(true);
  });

  it("serves nothing but /peer/v2/*, and applies a correctly signed push", async () => {
    const { deltas, entry } = intruderFor("insider");
    expect((await fetch(`${peerUrl}/like`, { method: "POST" })).status).toBe(404);
    expect((await fetch(`${peerUrl}/peer/v2/deltas`)).status).toBe(405);
    const res = await send("/peer/v2/deltas", deltas, signed("/peer/v2/deltas", deltas));
    expect(res.status).toBe(200);
    expect(binaryCodec.decode(res.bytes, "deltas-reply")).toMatchObject({
      kind: "deltas-reply",
      node: "node1",
      vv: new Map([[entry.origin, 1]]),
    });
    expect(await countOf(cluster.urls[0]!, entry.post)).toBe(1);
  });
});
