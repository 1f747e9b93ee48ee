// A JSON body that names a key twice is refused: JSON.parse would keep the last, a guess at what
// the client meant. keyTwice finds such a key in any object of a valid JSON text.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeJson, keyTwice } from "../../src/http/body.js";

describe("keyTwice", () => {
  it("finds a key twice in one object, whatever surrounds it or how it is escaped", () => {
    const cases: [string, string | undefined][] = [
      ['{"a":1,"a":2}', "a"],
      ['{"a":{"b":1},"b":2}', undefined],
      ['{"a":{"b":1,"b":2}}', "b"],
      ['{"\\u0061":1,"a":2}', "a"],
      ['[{"a":1},{"a":1}]', undefined],
      ['{"a":"}{\\"a\\":","b":[{},{"a":1}]}', undefined],
      ['{"a":"}{\\"a\\":","a":1}', "a"],
      ['{"x":[1,{"y":{}},"y"],"y":0,"x":1}', "x"],
      ["{}", undefined],
      ['{"":1,"":2}', ""],
    ];
    for (const [text, twice] of cases) expect(keyTwice(text), text).toBe(twice);
  });

  it("finds none in what JSON.stringify writes, and the one spliced into it", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue(), { minKeys: 1 }), (object) => {
        const text = JSON.stringify(object);
        expect(keyTwice(text)).toBeUndefined();
        const [first] = Object.keys(object);
        const spliced = `${text.slice(0, -1)},${JSON.stringify(first)}:0}`;
        expect(keyTwice(spliced)).toBe(first);
      }),
    );
  });

  it("makes decodeJson refuse such a body as invalid_body", () => {
    expect(() => decodeJson(Buffer.from('{"post":"p","post":"q","user":"u"}'))).toThrow(
      /names "post" twice/,
    );
    expect(decodeJson(Buffer.from(' {"post":"p","user":"u"}'))).toEqual({ post: "p", user: "u" });
  });
});
