/** Prints a small markdown table of figures, so the e2e output reads as a report. */
export function printTable(
  title: string,
  rows: Record<string, Record<string, string | number>>,
): void {
  const columns = [...new Set(Object.values(rows).flatMap((r) => Object.keys(r)))];
  const lines = [
    `\n${title}\n`,
    `| run | ${columns.join(' | ')} |`,
    `| --- | ${columns.map(() => '---').join(' | ')} |`,
    ...Object.entries(rows).map(
      ([name, r]) => `| ${name} | ${columns.map((c) => String(r[c] ?? '')).join(' | ')} |`,
    ),
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/**
 * How often a VM asked its metadata service, from the times of its GETs: the mean spacing
 * between consecutive GETs, as GETs per second. Counting GETs over a window instead
 * over-counts by one GET per window (a 1 s poller makes 5 GETs in a 4.01 s window: 1.25/s),
 * so a short window would read as a second poller. One poller every 1 s gives ≤ 1/s here;
 * two independent pollers give about 2/s.
 */
export function getsPerSecond(times: readonly number[]): { gets: number; perSecond: number } {
  const sorted = [...times].sort((a, b) => a - b);
  if (sorted.length < 2) return { gets: sorted.length, perSecond: 0 };
  const span = sorted[sorted.length - 1]! - sorted[0]!;
  return {
    gets: sorted.length,
    perSecond: Number((((sorted.length - 1) * 1000) / Math.max(1, span)).toFixed(2)),
  };
}
