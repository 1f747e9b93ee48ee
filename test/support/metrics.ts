// A node's metrics as the tests read them: one figure from its admin port's /metrics.

/** The sum of the samples of `name` in a /metrics text whose labels include every one given; undefined if none. */
export function sampleSum(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  let sum: number | undefined;
  for (const line of text.split("\n")) {
    const match = /^([a-z_]+)(\{[^}]*\})? (\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const set = match[2] ?? "";
    if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`)))
      sum = (sum ?? 0) + Number(match[3]);
  }
  return sum;
}

/** The sum of a node's samples of `name` whose labels include every one given; undefined if none. */
export async function metricSample(
  adminUrl: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  return sampleSum(await (await fetch(`${adminUrl}/metrics`)).text(), name, labels);
}

/** The same, 0 if none: for counters a node may not have shown yet. */
export async function metricSum(
  adminUrl: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  return (await metricSample(adminUrl, name, labels)) ?? 0;
}
