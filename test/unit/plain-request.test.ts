// The reader of plain requests takes only what it fully understands; anything else is node:http's.
import { describe, expect, it } from "vitest";
import { blankLines, MAX_HEAD_BYTES, parsePlainRequest } from "../../src/http/plain-request.js";

const LIKE = '{"post":"p1","user":"u1"}';

function post(headers: string[], body = LIKE, line = "POST /like HTTP/1.1"): Buffer {
  return Buffer.from(`${line}\r\n${headers.join("\r\n")}\r\n\r\n${body}`, "latin1");
}

const plainHeaders = [
  "Host: 127.0.0.1",
  "Content-Type: application/json",
  `Content-Length: ${LIKE.length}`,
];

describe("parsePlainRequest", () => {
  it("reads a plain like: query, trace headers, body and size", () => {
    const bytes = post([
      ...plainHeaders,
      "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      "User-Agent:  wrk \t",
      "X-Other: kept out",
    ]);
    const parsed = parsePlainRequest(Buffer.concat([bytes, Buffer.from("GET / HTTP/1.1\r\n")]));
    expect(parsed).toMatchObject({
      kind: "plain",
      size: bytes.length,
      request: {
        method: "POST",
        route: "/like",
        query: undefined,
        close: false,
        headers: {
          traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
          "user-agent": "wrk",
        },
      },
    });
    if (parsed.kind === "plain") expect(parsed.request.body.toString()).toBe(LIKE);
  });

  it("reads a plain read with its query, and Connection: close", () => {
    const bytes = Buffer.from(
      "GET /likes?post=p1&detail=true HTTP/1.1\r\nhost: x\r\nconnection: Close\r\n\r\n",
    );
    expect(parsePlainRequest(bytes)).toMatchObject({
      kind: "plain",
      size: bytes.length,
      request: { method: "GET", route: "/likes", query: "post=p1&detail=true", close: true },
    });
  });

  it("waits for the rest of a head, then for the rest of the body it announces", () => {
    const whole = post(plainHeaders);
    const headEnd = whole.indexOf("\r\n\r\n");
    for (const cut of [0, 5, 30, headEnd + 2])
      expect(parsePlainRequest(whole.subarray(0, cut))).toEqual({ kind: "incomplete", size: 0 });
    for (const cut of [headEnd + 4, whole.length - 1])
      expect(parsePlainRequest(whole.subarray(0, cut))).toEqual({
        kind: "incomplete",
        size: whole.length,
      });
  });

  it("leaves to node:http a head not yet ended as soon as a line of it is one node:http refuses", () => {
    /** Fed a byte at a time, as a connection reads: the first answer that is not "incomplete". */
    const drip = (bytes: Buffer): { kind: string; at: number } => {
      let from = 0;
      for (let n = 1; n <= bytes.length; n++) {
        const parsed = parsePlainRequest(bytes.subarray(0, n), from);
        if (parsed.kind !== "incomplete") return { kind: parsed.kind, at: n };
        // As the connection does: once the head has ended, from its start again.
        from = parsed.size === 0 ? Math.max(0, n - 3) : 0;
      }
      return { kind: "incomplete", at: bytes.length };
    };
    // Each refused at its last byte, as node:http refuses it.
    const refused = {
      "a request line of another version": "POST /like HTTP/1.0\r\n",
      "a header name without a colon at its line's end":
        "POST /like HTTP/1.1\r\nHost: x\r\nBroken\r\n",
      "a header name with a space": "POST /like HTTP/1.1\r\nHost: x\r\nX ",
      "a control character in a value": "GET /likes?post=p HTTP/1.1\r\nX-A: a\u0003",
      "a body where the empty line should be": `POST /like HTTP/1.1\r\nHost: x\r\nContent-Length: 25\r\n{`,
    };
    for (const [what, text] of Object.entries(refused)) {
      const bytes = Buffer.from(text, "latin1");
      expect(drip(bytes), what).toEqual({ kind: "other", at: bytes.length });
    }
    // A line not yet ended is not judged by what its end may still make right.
    const fine = "POST /like HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nContent-Typ";
    expect(drip(Buffer.from(fine))).toEqual({ kind: "incomplete", at: fine.length });
    // A whole plain request, a byte at a time, stays plain to its last byte.
    const get = Buffer.from("GET /likes?post=p HTTP/1.1\r\nHost: x\r\n\r\n");
    for (const whole of [post(plainHeaders), get])
      expect(drip(whole)).toEqual({ kind: "plain", at: whole.length });
  });

  it("looks for the end of a head from where it was told", () => {
    const whole = post(plainHeaders);
    expect(parsePlainRequest(whole, 0)).toMatchObject({ kind: "plain", size: whole.length });
    expect(parsePlainRequest(whole, whole.indexOf("\r\n\r\n") - 3)).toMatchObject({
      kind: "plain",
    });
    // Past the end of the head, no head is found (the caller never asks that).
    expect(parsePlainRequest(whole, whole.indexOf("\r\n\r\n") + 1)).toEqual({
      kind: "incomplete",
      size: 0,
    });
  });

  it("keeps every header, for whichever trace propagator is configured", () => {
    const parsed = parsePlainRequest(
      post([
        ...plainHeaders,
        "b3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1",
        "Constructor: x",
      ]),
    );
    expect(parsed.kind === "plain" && parsed.request.headers).toMatchObject({
      b3: "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1",
      constructor: "x",
      host: "127.0.0.1",
    });
  });

  it("counts the empty lines before a request, which node:http skips too", () => {
    expect(blankLines(Buffer.from("\r\n\r\nGET"))).toBe(4);
    expect(blankLines(Buffer.from("\r\n\r"))).toBe(2);
    expect(blankLines(Buffer.from("GET /likes"))).toBe(0);
    expect(blankLines(Buffer.from("\n\r\n"))).toBe(0);
  });

  const others: Record<string, Buffer> = {
    "HTTP/1.0": post(plainHeaders, LIKE, "POST /like HTTP/1.0"),
    "another route": post(plainHeaders, LIKE, "POST /likes HTTP/1.1"),
    "a longer path": post(plainHeaders, LIKE, "POST /like/x HTTP/1.1"),
    "a lower-case method": post(plainHeaders, LIKE, "post /like HTTP/1.1"),
    "a space in the target": post(plainHeaders, LIKE, "POST /like?a=b c HTTP/1.1"),
    "a non-ASCII target": post(plainHeaders, LIKE, "POST /like?a=\u00fc HTTP/1.1"),
    "no Host": post(plainHeaders.slice(1)),
    "two Hosts": post([...plainHeaders, "Host: y"]),
    "two lengths": post([...plainHeaders, `content-length: ${LIKE.length}`]),
    "a signed length": post([plainHeaders[0] ?? "", plainHeaders[1] ?? "", "Content-Length: +25"]),
    "no length": post(plainHeaders.slice(0, 2)),
    "an empty body": post([plainHeaders[0] ?? "", plainHeaders[1] ?? "", "Content-Length: 0"], ""),
    "a body over the limit": post(
      [plainHeaders[0] ?? "", plainHeaders[1] ?? "", "Content-Length: 16385"],
      "x".repeat(16385),
    ),
    chunked: post([...plainHeaders, "Transfer-Encoding: chunked"]),
    compressed: post([...plainHeaders, "Content-Encoding: gzip"]),
    "Expect: 100-continue": post([...plainHeaders, "Expect: 100-continue"]),
    "an Upgrade": post([...plainHeaders, "Connection: Upgrade", "Upgrade: websocket"]),
    "another Connection option": post([...plainHeaders, "Connection: keep-alive, x"]),
    "a text body": post(["Host: x", "Content-Type: text/plain", `Content-Length: ${LIKE.length}`]),
    "another charset": post([
      "Host: x",
      "Content-Type: application/json; charset=latin1",
      `Content-Length: ${LIKE.length}`,
    ]),
    "two traceparents": post([...plainHeaders, "traceparent: a", "traceparent: b"]),
    "any header twice": post([...plainHeaders, "Accept: a", "accept: b"]),
    "two Connection headers": post([
      ...plainHeaders,
      "Connection: keep-alive",
      "Connection: close",
    ]),
    "a header without a colon": post([...plainHeaders, "Broken"]),
    "a folded header": post([...plainHeaders, "X-A: 1", " continued"]),
    "a space before the colon": post([...plainHeaders, "X-A : 1"]),
    "a control character in a value": post([...plainHeaders, "X-A: a\u0001b"]),
    "a bare line feed": post([...plainHeaders, "X-A: a\nX-B: b"]),
    "a GET with a body": Buffer.from(
      "GET /likes?post=p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    ),
    "a HEAD": Buffer.from("HEAD /likes?post=p HTTP/1.1\r\nHost: x\r\n\r\n"),
    "a leading empty line": Buffer.from("\r\nGET /likes?post=p HTTP/1.1\r\nHost: x\r\n\r\n"),
    "a head over the limit": Buffer.from(
      `GET /likes?post=p HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(MAX_HEAD_BYTES)}`,
    ),
  };
  for (const [what, bytes] of Object.entries(others))
    it(`leaves ${what} to node:http`, () => {
      expect(parsePlainRequest(bytes)).toEqual({ kind: "other" });
    });
});
