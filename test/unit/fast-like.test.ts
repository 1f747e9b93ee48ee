// The express-free POST /like path must answer exactly as the express route does: the same
// status, Content-Type and body for every request, plain or not, and the same effect on the store.
import { Agent, request } from "node:http";
import fc from "fast-check";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { PostId, UserId } from "../../src/crdt/index.js";
import { startApp } from "../support/app.js";

type App = Awaited<ReturnType<typeof startApp>>;
let fast: App;
let express: App;
const agent = new Agent({ keepAlive: false });
beforeAll(async () => {
  [fast, express] = await Promise.all([
    startApp({ fastLike: true }),
    startApp({ fastLike: false }),
  ]);
});
afterAll(async () => {
  agent.destroy();
  await Promise.all([fast.close(), express.close()]);
});

interface Sent {
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

interface Answer {
  status: number;
  type: string | undefined;
  body: unknown;
}

function send(app: App, { path, headers, body }: Sent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${app.url}${path}`, { method: "POST", headers, agent }, (res) => {
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
      expect(fast.store.setSize()).toBe(express.store.setSize());
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
