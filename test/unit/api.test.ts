import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PostId } from "../../src/crdt/index.js";
import { snapshot, startApp } from "../support/app.js";

let app: Awaited<ReturnType<typeof startApp>>;
beforeAll(async () => {
  app = await startApp();
});
afterAll(() => app.close());

async function post(body: string, contentType = "application/json", query = "") {
  const res = await fetch(`${app.url}/like${query}`, {
    method: "POST",
    headers: { "content-type": contentType },
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
async function get(path: string) {
  const res = await fetch(`${app.url}${path}`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
const likeBody = (p: unknown, u: unknown) => JSON.stringify({ post: p, user: u });

/** Sends a bad request and proves it got `status` with a stable code and changed nothing. */
async function rejects(
  status: number,
  send: () => Promise<{ status: number; body: Record<string, unknown> }>,
) {
  const before = snapshot(app.store);
  const res = await send();
  expect(res.status).toBe(status);
  expect(res.body).toMatchObject({
    error: { code: expect.any(String), message: expect.any(String) },
  });
  expect(snapshot(app.store)).toBe(before);
  return res.body;
}

describe("public API", () => {
  it("GET / answers with the node's name, as the seed's heartbeat", async () => {
    const res = await get("/");
    expect(res).toEqual({
      status: 200,
      body: { node: "test-node", origin: app.store.origin, peers: 0, status: "ok" },
    });
  });

  it("POST /like answers 201 for a new like and 200 with new:false for a repeat", async () => {
    expect(await post(likeBody("post-1", "alice"))).toEqual({
      status: 201,
      body: { post: "post-1", user: "alice", new: true, node: "test-node" },
    });
    expect(await post(likeBody("post-1", "alice"))).toEqual({
      status: 200,
      body: { post: "post-1", user: "alice", new: false, node: "test-node" },
    });
    expect((await get("/likes?post=post-1")).body).toEqual({ post: "post-1", likes: 1 });
  });

  it("keeps unicode posts and users exactly", async () => {
    const p = "пост/📸 #1";
    const users = ["ὈΔΥΣΣΕΎΣ", "😀", "e\u0301", "é"];
    for (const u of users) expect((await post(likeBody(p, u))).status).toBe(201);
    const res = await get(`/likes?post=${encodeURIComponent(p)}&detail=true`);
    expect(res.body.likes).toBe(4);
    expect([...(res.body.users as string[])].sort()).toEqual([...users].sort());
  });

  it("accepts 256 bytes and rejects 257", async () => {
    const at256 = "é".repeat(128);
    expect((await post(likeBody(at256, "x".repeat(256)))).status).toBe(201);
    await rejects(400, () => post(likeBody(at256 + "a", "u")));
    await rejects(400, () => post(likeBody("p", "x".repeat(257))));
  });

  it("rejects control characters, wrong types, missing fields and malformed JSON with 400", async () => {
    for (const body of [
      likeBody("p\u0000", "u"),
      likeBody("p", "u\n"),
      likeBody("p\u0085", "u"),
      likeBody("p", "\u007f"),
      likeBody(1, "u"),
      likeBody("p", null),
      likeBody("p", ["u"]),
      likeBody("", "u"),
      JSON.stringify({ post: "p" }),
      JSON.stringify({ user: "u" }),
      JSON.stringify({ post: "p", user: "u", extra: 1 }),
      '{"post":"p","post":"q","user":"u"}',
      '"\\ud800"',
      '{"post":"\\ud800","user":"u"}',
      "[]",
      "null",
      "{",
      '{"post": "p", "user": "u"',
    ])
      await rejects(400, () => post(body));
  });

  it("rejects a body over 16 KiB with 413 and a non-JSON body with 415", async () => {
    await rejects(413, () =>
      post(JSON.stringify({ post: "p", user: "u", pad: "x".repeat(17 * 1024) })),
    );
    await rejects(415, () => post("post=p&user=u", "application/x-www-form-urlencoded"));
    await rejects(415, () => post(likeBody("p", "u"), "text/plain"));
  });

  it("answers 404 for unknown paths and 405 with Allow for wrong methods", async () => {
    await rejects(404, () => get("/nope"));
    const res = await fetch(`${app.url}/like`, { method: "GET" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
    const del = await fetch(`${app.url}/likes?post=p`, { method: "DELETE" });
    expect(del.status).toBe(405);
    expect(await del.json()).toMatchObject({ error: { code: "method_not_allowed" } });
  });

  it("pages users with limit and cursor", async () => {
    for (let i = 0; i < 25; i++)
      await post(likeBody("paged", `user-${String(i).padStart(2, "0")}`));
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await get(
        `/likes?post=paged&detail=true&limit=10${cursor ? `&cursor=${cursor}` : ""}`,
      );
      expect(page.body.likes).toBe(25);
      seen.push(...(page.body.users as string[]));
      cursor = page.body.next as string | null;
    } while (cursor !== null);
    expect(seen).toEqual(
      Array.from({ length: 25 }, (_, i) => `user-${String(i).padStart(2, "0")}`),
    );
    for (const bad of [
      "limit=0",
      "limit=1001",
      "limit=x",
      "cursor=%%%",
      "cursor=AAAA",
      "detail=yes",
    ])
      await rejects(400, () => get(`/likes?post=paged&detail=true&${bad}`));
  });

  it("answers liked for a user and counts for many posts", async () => {
    await post(likeBody("feed-a", "bob"));
    expect((await get("/likes?post=feed-a&user=bob")).body).toEqual({
      post: "feed-a",
      likes: 1,
      liked: true,
    });
    expect((await get("/likes?post=feed-a&user=carol")).body).toEqual({
      post: "feed-a",
      likes: 1,
      liked: false,
    });
    expect((await get("/counts?post=feed-a&post=unknown")).body).toEqual({
      counts: { "feed-a": 1, unknown: 0 },
    });
    await rejects(400, () =>
      get(`/counts?${Array.from({ length: 101 }, (_, i) => `post=p${i}`).join("&")}`),
    );
    await rejects(400, () => get("/counts"));
  });

  it("rejects a bad query with 400: missing post, repeated post, unknown parameter", async () => {
    await rejects(400, () => get("/likes"));
    await rejects(400, () => get("/likes?post=a&post=b"));
    await rejects(400, () => get("/likes?post=a&detials=true"));
    await rejects(400, () => get("/likes?post=%00"));
    await rejects(400, () => post(likeBody("p", "u"), "application/json", "?consistency=most"));
  });

  it("answers the probes, and refuses a query on them as on every path", async () => {
    expect(await get("/healthz")).toEqual({ status: 200, body: { status: "ok" } });
    expect(await get("/readyz")).toEqual({ status: 200, body: { status: "ready" } });
    for (const probe of ["/healthz?x=1", "/readyz?x=1", "/?x=1"])
      expect(await get(probe)).toEqual({
        status: 400,
        body: {
          error: {
            code: "invalid_query",
            message: 'unknown query parameter "x"; this path takes none',
          },
        },
      });
  });

  it("treats an empty POST as a 400 and a chunked JSON body like any other", async () => {
    await rejects(400, () => post(""));
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        `${app.url}/like`,
        { method: "POST", headers: { "content-type": "application/json" } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.write('{"post":"chunked",');
      req.end('"user":"u"}');
    });
    expect(status).toBe(201);
    expect(app.store.count("chunked" as PostId)).toBe(1);
  });
});
