// The express-free POST /like and GET /likes paths, through node:http and read straight off the
// socket (lean-connection.ts), must answer exactly as the express routes do: the same status,
// Content-Type and body for every request, plain or not, and the same effect on the store.
import { Agent, request } from "node:http";
import fc from "fast-check";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { PostId, UserId } from "../../src/crdt/index.js";
import { startApp } from "../support/app.js";

type App = Awaited<ReturnType<typeof startApp>>;
let fast: App;
let express: App;
/** The node's own server: plain requests read off the socket, without node:http. */
let lean: App;
const agent = new Agent({ keepAlive: false });
beforeAll(async () => {
  [fast, express, lean] = await Promise.all([
    startApp({ fastPaths: true }),
    startApp({ fastPaths: false }),
    startApp({ lean: true }),
  ]);
});
afterAll(async () => {
  agent.destroy();
  await Promise.all([fast.close(), express.close(), lean.close()]);
});

interface Sent {
  method?: "GET" | "POST";
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

interface Answer {
  status: number;
  type: string | undefined;
  body: unknown;
}

function send(app: App, { method = "POST", path, headers, body }: Sent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // The path as given, fragment and all: a URL string would lose the fragment in the client.
    const { hostname, port } = new URL(app.url);
    const req = request({ hostname, port, path, method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          type: res.headers["content-type"],
          body: JSON.parse(Buffer.concat(chunks).toString()) as unknown,
        }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

const name = fc.oneof(
  fc.constantFrom("p1", "p2", "alice", "bob", "ünï", ""),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "grapheme", maxLength: 6 }),
  fc.string({ minLength: 200, maxLength: 300 }),
);
const likeJson = fc.record({ post: name, user: name }, { requiredKeys: [] });
const text = fc.oneof(
  likeJson.map((like) => JSON.stringify(like)),
  likeJson.map((like) => `\uFEFF${JSON.stringify(like)}`),
  likeJson.map((like) => ` \n\t${JSON.stringify(like)}\r\n`),
  likeJson.map((like) => JSON.stringify({ ...like, extra: 1 })),
  fc.jsonValue().map((value) => JSON.stringify(value)),
  fc.constantFrom("", " ", "{", "[]", "null", '"x"', "42", '{"post":"a","user":"b"}x', "{'a':1}"),
  fc.string({ maxLength: 40 }),
  fc.constant(JSON.stringify({ post: "big", user: "x".repeat(17 * 1024) })),
);
const body = fc.oneof(
  { weight: 5, arbitrary: text.map((t) => Buffer.from(t, "utf8")) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: text.map((t) => Buffer.from(t, "latin1")) },
);
const contentType = fc.constantFrom(
  "application/json",
  "application/json; charset=utf-8",
  "application/json;charset=utf-8",
  "Application/JSON",
  "application/json; charset=UTF-8",
  "application/json; charset=latin1",
  "application/merge-patch+json",
  "text/plain",
  undefined,
);
const path = fc.constantFrom(
  "/like",
  "/like?consistency=all",
  "/like?consistency=quorum",
  "/like?consistency=bogus",
  "/like?consistency=all&consistency=local",
  "/like?consistency",
  "/like?",
  "/like?user=u",
  "/like?%zz=1",
  "/LIKE",
  "/like/",
  "/like#x",
  "/like?consistency=local#x",
  "/like?consistency=bogus#x",
);

it("answers every POST /like as the express route does, and changes the store alike", async () => {
  await fc.assert(
    fc.asyncProperty(path, contentType, body, async (p, type, bytes) => {
      const sent: Sent = {
        path: p,
        headers: type === undefined ? {} : { "content-type": type },
        body: bytes,
      };
      const [a, b] = [await send(fast, sent), await send(express, sent)];
      expect(a).toEqual(b);
      expect(await send(lean, sent)).toEqual(b);
      expect(fast.store.setSize()).toBe(express.store.setSize());
      expect(lean.store.setSize()).toBe(express.store.setSize());
    }),
    { numRuns: 400 },
  );
});

it("serves likes on the fast path: repeat likes are 200, new ones 201", async () => {
  const sent: Sent = {
    path: "/like",
    headers: { "content-type": "application/json" },
    body: Buffer.from(JSON.stringify({ post: "fast-post", user: "fast-user" })),
  };
  expect(await send(fast, sent)).toMatchObject({ status: 201, body: { new: true } });
  expect(await send(fast, sent)).toMatchObject({ status: 200, body: { new: false } });
  expect(fast.store.liked("fast-post" as PostId, "fast-user" as UserId)).toBe(true);
});

const readValue = fc.oneof(
  fc.constantFrom("p1", "p2", "read-post", "", "true", "false", "1", "0", "10", "1000", "-1"),
  fc.constantFrom("%zz", "%C3%BC", "%FF", "a%20b", "eyJ1IjoiYSJ9", "x".repeat(300)),
  fc.string({ maxLength: 8 }).map(encodeURIComponent),
);
const readKey = fc.constantFrom("post", "detail", "limit", "cursor", "user", "other", "", "%zz");
const readPath = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .array(fc.tuple(readKey, readValue), { maxLength: 5 })
      .map(
        (pairs) =>
          `/likes${pairs.length === 0 ? "" : "?"}${pairs.map(([k, v]) => `${k}=${v}`).join("&")}`,
      ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "/likes?",
      "/likes?post",
      "/likes/?post=p1",
      "/LIKES?post=p1",
      "/likes?post=p1&post=p2",
      "/likes?post=p1#frag",
      "/likes?post=read-post#frag",
      "/likes#frag",
      "/likes?post=read-post&detail=true#x&limit=1",
    ),
  },
);

it("answers every GET /likes as the express route does", async () => {
  // Both stores hold the same likes, enough for a page and a cursor.
  for (let i = 0; i < 12; i++) {
    const sent: Sent = {
      path: "/like",
      headers: { "content-type": "application/json" },
      body: Buffer.from(JSON.stringify({ post: "read-post", user: `u${i}` })),
    };
    await Promise.all([send(fast, sent), send(express, sent), send(lean, sent)]);
  }
  await fc.assert(
    fc.asyncProperty(readPath, async (p) => {
      const sent: Sent = { method: "GET", path: p, headers: {}, body: Buffer.alloc(0) };
      const expected = await send(express, sent);
      expect(await send(fast, sent)).toEqual(expected);
      expect(await send(lean, sent)).toEqual(expected);
    }),
    { numRuns: 400 },
  );
  const page = await send(fast, {
    method: "GET",
    path: "/likes?post=read-post&detail=true&limit=5",
    headers: {},
    body: Buffer.alloc(0),
  });
  expect(page).toMatchObject({ status: 200, body: { post: "read-post", likes: 12 } });
});
