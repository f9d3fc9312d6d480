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
