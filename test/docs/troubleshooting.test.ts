// docs/troubleshooting.md lists every message freezeguard logs: extracted from the sources,
// so a new message without a row fails here with the list of what is missing.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { logMessages } from './log-messages.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const doc = readFileSync(`${repo}docs/troubleshooting.md`, 'utf8');
const messages = logMessages(repo);

/** The messages of the doc's tables (first column, in backticks). */
const rows = [...doc.matchAll(/^\| `(freezeguard: [^`]*)` \|/gm)].map((m) => m[1]!);

describe('docs/troubleshooting.md', () => {
  it('finds the messages in the sources', () => {
    expect(messages.length).toBeGreaterThan(50);
    expect(messages.map((m) => m.message)).toContain('freezeguard: <previous> -> <next>');
  });

  it('has a row for every message freezeguard logs', () => {
    const documented = new Set(rows);
    const missing = messages.filter((m) => !documented.has(m.message));
    expect(
      missing.map((m) => `${m.message}    (${m.at})`),
      `add a row (| \`message\` | level | meaning | what to do |) for each of these to docs/troubleshooting.md`,
    ).toEqual([]);
  });

  it('lists no message the sources no longer log', () => {
    const logged = new Set(messages.map((m) => m.message));
    expect(rows.filter((r) => !logged.has(r))).toEqual([]);
  });

  it('every message is ASCII (`->`, not an arrow)', () => {
    expect(messages.filter((m) => /[^\x20-\x7e…]/.test(m.message))).toEqual([]);
  });

  it('no log message keeps a prefix of its own (`freezeguard fleet:`, `freezeguard local:`)', () => {
    const other = /(['"`])freezeguard (fleet|local): /;
    const offenders = [
      'core',
      'fleet',
      'bullmq',
      'metrics',
      'express',
      'fastify',
      'streams',
    ].flatMap((pkg) => {
      const dir = `${repo}packages/${pkg}/src/`;
      return readdirSync(dir, { recursive: true, encoding: 'utf8' })
        .filter((f) => f.endsWith('.ts'))
        .filter((f) => other.test(readFileSync(dir + f, 'utf8')))
        .map((f) => `packages/${pkg}/src/${f}`);
    });
    expect(offenders).toEqual([]);
  });
});
