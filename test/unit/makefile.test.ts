import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
const makefiles = [
  "Makefile",
  ...readdirSync(`${root}/mk`)
    .filter((f) => f.endsWith(".mk"))
    .map((f) => `mk/${f}`),
];

describe("the Makefile", () => {
  it("has help as its default goal, listing every phony target with a one-line description", () => {
    const help = execFileSync("make", ["--no-print-directory", "-C", root], { encoding: "utf8" });
    const listed = new Map(
      help
        .split("\n")
        // eslint-disable-next-line no-control-regex -- strips the ANSI colours of make help
        .map((line) => line.replace(/\x1b\[[0-9;]*m/g, "").trim())
        .filter(Boolean)
        .map((line) => [line.split(/\s+/)[0] ?? "", line.slice(line.indexOf(" ")).trim()]),
    );
    const phony = makefiles.flatMap((file) =>
      [...readFileSync(`${root}/${file}`, "utf8").matchAll(/^\.PHONY:(.*)$/gm)].flatMap((m) =>
        (m[1] ?? "").trim().split(/\s+/),
      ),
    );
    expect(phony).toEqual(
      expect.arrayContaining([
        "help",
        "dev",
        "test",
        "lint",
        "build",
        "clean",
        "image",
        "run",
        "stop",
        "logs",
        "render",
        "test-image",
      ]),
    );
    for (const target of phony) {
      expect(listed.has(target), `make help lists ${target}`).toBe(true);
      expect(listed.get(target)?.length, `${target} has a description`).toBeGreaterThan(10);
    }
  });
});
