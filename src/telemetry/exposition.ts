// The metrics' exposition for scrapers that do not ask for OpenMetrics.

/**
 * OpenMetrics as prom-client writes it, rewritten as Prometheus text 0.0.4: exemplars and the
 * EOF marker dropped, counter families named with their `_total` samples.
 */
export function toPrometheusText(openMetrics: string): string {
  const counters = new Set<string>();
  for (const match of openMetrics.matchAll(/^# TYPE (\S+) counter$/gm))
    counters.add(match[1] as string);
  const lines: string[] = [];
  for (const line of openMetrics.split("\n")) {
    if (line === "# EOF" || line === "") continue;
    const meta = /^# (HELP|TYPE) (\S+)( .*)?$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string | undefined];
      lines.push(`# ${kind} ${counters.has(name) ? `${name}_total` : name}${rest ?? ""}`);
      continue;
    }
    const exemplar = line.indexOf(" # {");
    lines.push(exemplar === -1 ? line : line.slice(0, exemplar));
  }
  return lines.join("\n") + "\n";
}
