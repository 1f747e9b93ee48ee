import { Agent, request } from "node:http";
import { connect } from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { snapshot, startApp } from "../support/app.js";

let app: Awaited<ReturnType<typeof startApp>>;
// A fresh connection per request: an error answer may close its connection, and a reused socket
// would then fail on the client side, not in the server under test.
const agent = new Agent({ keepAlive: false });
beforeAll(async () => {
  app = await startApp();
});
afterAll(async () => {
  agent.destroy();
  await app.close();
});

interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
}

function send({ method, path, headers, body }: Sent): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${app.url}${path}`, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

const field = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.string({ unit: "binary", maxLength: 300 }),
  fc.constantFrom(
    "p",
    "u",
    "",
    "é".repeat(128),
    "x".repeat(257),
    "\u0000",
    "\ud800",
    "__proto__",
    "constructor",
  ),
);
const jsonValue = fc.oneof(
  fc.record({ post: field, user: field }),
  fc.record({ post: fc.jsonValue(), user: fc.jsonValue() }, { requiredKeys: [] }),
  fc.jsonValue(),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 })),
);
const body = fc.oneof(
  jsonValue.map((v) => Buffer.from(JSON.stringify(v) ?? "")),
  fc.string({ unit: "binary", maxLength: 64 }).map((s) => Buffer.from(s)),
  fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
  fc
    .integer({ min: 16 * 1024 - 64, max: 17 * 1024 })
    .map((n) => Buffer.from(`{"post":"p","user":"${"u".repeat(n)}"}`)),
  fc.constant(undefined),
);
const queryValue = fc.oneof(
  fc.string({ maxLength: 10 }),
  fc.constantFrom("true", "false", "0", "1001", "%", "%00", "local", "all"),
);
const query = fc
  .array(
    fc.tuple(
      fc.constantFrom(
        "post",
        "user",
        "detail",
        "limit",
        "cursor",
        "consistency",
        "x",
        "post[]",
        "post[a]",
      ),
      queryValue,
    ),
    { maxLength: 5 },
  )
  .map((pairs) =>
    pairs.length
      ? "?" +
        pairs
          .map(
            ([k, v]) =>
              `${encodeURIComponent(k)}=${Math.random() < 0.9 ? encodeURIComponent(v) : v.replace(/[^\x21-\x7e]/g, "")}`,
          )
          .join("&")
      : "",
  );
const path = fc.oneof(
  fc.constantFrom(
    "/",
    "/like",
    "/likes",
    "/counts",
    "/healthz",
    "/readyz",
    "/like/",
    "/LIKE",
    "/%",
    "/..%2f",
    "//like",
  ),
  fc.webPath().filter((p) => p.startsWith("/")),
);
const headerValue = fc.string({
  unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789/+;=-. *,"),
  maxLength: 40,
});
const headers = fc.record(
  {
    "content-type": fc.oneof(
      fc.constantFrom(
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=latin1",
        "text/plain",
        "application/merge-patch+json",
        "multipart/form-data",
        "",
      ),
      headerValue,
    ),
    "content-encoding": fc.constantFrom("gzip", "identity", "br", "x"),
    accept: headerValue,
    "x-random": headerValue,
  },
  { requiredKeys: [] },
);
const requestArb = fc.record({
  method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"),
  path: fc.tuple(path, query).map(([p, q]) => p + q),
  headers,
  body,
});

describe("fuzzing the public API", () => {
  it("answers 10,000 random requests without a 5xx, a crash or a change from a rejected request", async () => {
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(requestArb, async (req: Sent) => {
        if (req.method === "GET" || req.method === "HEAD") req.body = undefined;
        const before = snapshot(app.store);
        const res = await send(req);
        sent++;
        expect(res.status, `${req.method} ${req.path} -> ${res.status} ${res.text}`).toBeLessThan(
          500,
        );
        if (res.status >= 400) {
          expect(snapshot(app.store)).toBe(before);
          if (req.method !== "HEAD")
            expect(JSON.parse(res.text)).toMatchObject({ error: { code: expect.any(String) } });
        }
      }),
      { numRuns: 10_000 },
    );
    expect(sent).toBe(10_000);
    expect(
      (await send({ method: "GET", path: "/healthz", headers: {}, body: undefined })).status,
    ).toBe(200);
  });

  it("survives garbage bytes on the socket", async () => {
    const { port } = new URL(app.url);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 200 }), async (bytes) => {
        await new Promise<void>((resolve) => {
          const socket = connect(Number(port), "127.0.0.1", () => socket.end(Buffer.from(bytes)));
          socket.on("data", () => {});
          socket.on("close", () => resolve());
          socket.on("error", () => resolve());
          socket.setTimeout(2000, () => socket.destroy());
        });
      }),
      { numRuns: 200 },
    );
    expect(
      (await send({ method: "GET", path: "/healthz", headers: {}, body: undefined })).status,
    ).toBe(200);
  });
});
