// The core README's environment table lists every FREEZEGUARD_* variable the packages read
// (`env.X` or a quoted name: constants such as FREEZEGUARD_ERROR_CODES are not variables).
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../', import.meta.url));

it('every FREEZEGUARD_* variable in packages/*/src has a row in the core README table', () => {
  const read = new Map<string, string>();
  for (const pkg of readdirSync(`${repo}packages`)) {
    const dir = `${repo}packages/${pkg}/src/`;
    let files: string[];
    try {
      files = readdirSync(dir, { recursive: true, encoding: 'utf8' });
    } catch {
      continue;
    }
    for (const f of files.filter((n) => n.endsWith('.ts'))) {
      for (const [name] of readFileSync(dir + f, 'utf8').matchAll(
        /(?<=env\.|['"`])FREEZEGUARD_[A-Z_]+[A-Z]\b/g,
      ))
        if (!read.has(name)) read.set(name, `packages/${pkg}/src/${f}`);
    }
  }
  const readme = readFileSync(`${repo}packages/core/README.md`, 'utf8');
  const table = readme.slice(readme.indexOf('### From the environment'));
  const rows = new Set(
    [...table.matchAll(/^\| ([^|]+) \|/gm)].flatMap((m) =>
      [...m[1]!.matchAll(/`(FREEZEGUARD_[A-Z_]+)`/g)].map((v) => v[1]!),
    ),
  );
  const missing = [...read].filter(([name]) => !rows.has(name)).map(([n, at]) => `${n} (${at})`);
  expect(read.size).toBeGreaterThan(10);
  expect(missing, 'add these to "From the environment" in packages/core/README.md').toEqual([]);
});
