// The benchmark's report: the goals' table and the throughput targets' rows, printed and
// written beside the raw results (`bench/results/<day>.json` and `.md`; a smoke run's go to
// `test-results/`).
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ThroughputResult } from "./sections/throughput.js";
import type { Goal } from "./goals.js";
import { REPO } from "./lib/likes.js";
import { fmt, show } from "./lib/stats.js";

export interface Report {
  readonly date: string;
  readonly machine: string;
  readonly smoke: boolean;
  readonly rounds: number;
  readonly goals: readonly Goal[];
  readonly throughputs: readonly ThroughputResult[];
}

/** The report as markdown lines. */
export function reportLines(r: Report): string[] {
  const lines = [
    `## likes benchmark${r.smoke ? " (smoke)" : ""}`,
    "",
    `${r.date}, ${r.machine}; ${r.rounds} round(s), median (min–max).`,
    "",
    "| figure | measured | goal | met |",
    "| --- | --- | --- | --- |",
    ...r.goals.map(
      ([name, measured, goal, met]) =>
        `| ${name} | ${measured} | ${goal} | ${met === undefined ? "" : met ? "yes" : "**no**"} |`,
    ),
    "",
  ];
  if (r.throughputs.length > 0)
    lines.push(
      "| runtime | target | POST req/s | POST p50 / p99 ms | POST CPU µs, loaded (all) | GET count req/s | GET p99 ms | GET CPU µs |",
      "| --- | --- | --- | --- | --- | --- | --- | --- |",
      ...r.throughputs.flatMap((t) =>
        (Object.keys(t.post) as (keyof ThroughputResult["post"])[]).map(
          (name) =>
            `| ${t.label} | ${name} | ${show(t.post[name].rps, 0)} | ${fmt(t.post[name].p50Ms.median)} / ${fmt(t.post[name].p99Ms.median)} | ${fmt(t.post[name].cpuUs.median, 0)} (${fmt(t.post[name].cpuUsAll.median, 0)}) | ${show(t.get[name].rps, 0)} | ${fmt(t.get[name].p99Ms.median)} | ${fmt(t.get[name].cpuUs.median, 0)} |`,
        ),
      ),
      "",
    );
  return lines;
}

/** Writes the raw results and the report's lines; returns the JSON file's path. */
export function writeReport(smoke: boolean, results: { date: string }, lines: string[]): string {
  const dir = smoke ? join(REPO, "test-results") : join(REPO, "bench/results");
  mkdirSync(dir, { recursive: true });
  const file = smoke ? join(dir, "bench-smoke.json") : freeName(dir, results.date);
  writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
  writeFileSync(file.replace(/\.json$/, ".md"), lines.join("\n"));
  return file;
}

/** `<day>.json`, or `<day>-2.json`, `-3`, … when a run of that day is there already. */
function freeName(dir: string, date: string): string {
  const day = date.slice(0, 10);
  for (let n = 1; ; n++) {
    const file = join(dir, n === 1 ? `${day}.json` : `${day}-${n}.json`);
    if (!existsSync(file) && !existsSync(file.replace(/\.json$/, ".md"))) return file;
  }
}
