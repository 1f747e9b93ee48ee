// The query parser's plain case (nothing to decode) against node:querystring, which parses the
// rest: the same object for every query without `%` or `+`.
import querystring from "node:querystring";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseQuery, splitPlain } from "../../src/http/validation.js";

const plain = fc.string({
  unit: fc.constantFrom(
    "a",
    "b",
    "post",
    "=",
    "&",
    "=",
    "&",
    "x1",
    ".",
    "~",
    "é",
    " ",
    "__proto__",
  ),
  maxLength: 40,
});

describe("splitPlain", () => {
  it("parses what querystring.parse parses, for queries with nothing to decode", () => {
    fc.assert(
      fc.property(plain, (search) => {
        const ours = splitPlain(search);
        expect(ours).toEqual(querystring.parse(search, "&", "=", { maxKeys: 1000 }));
        expect(Object.getPrototypeOf(ours)).toBeNull();
      }),
      { numRuns: 2000 },
    );
    for (const search of [
      "",
      "&",
      "&&",
      "=",
      "a",
      "a=",
      "=b",
      "a=b=c",
      "a&a",
      "a=1&a=2&a=3",
      "&a=1&",
    ])
      expect(splitPlain(search)).toEqual(querystring.parse(search));
  });

  it("is what parseQuery uses when there is nothing to decode, and querystring when there is", () => {
    expect(parseQuery("post=p1&detail=true")).toEqual({ post: "p1", detail: "true" });
    expect(parseQuery("post=a+b&user=%C3%A9")).toEqual({ post: "a b", user: "é" });
  });
});
