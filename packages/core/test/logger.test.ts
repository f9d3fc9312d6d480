// The console logger: text or one JSON object per line, level and format from the
// environment when not given in code.
import { afterEach, describe, expect, it } from 'vitest';
import { createConsoleLogger } from '../src/index.js';
import { envLoggerOptions } from '../src/logger.js';

const saved = { ...process.env };
afterEach(() => {
  for (const k of ['FREEZEGUARD_LOG_LEVEL', 'FREEZEGUARD_LOG_FORMAT']) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

function capture(options: Parameters<typeof createConsoleLogger>[0] = {}) {
  const lines: string[] = [];
  return { lines, logger: createConsoleLogger({ ...options, write: (l) => lines.push(l) }) };
}

describe('createConsoleLogger', () => {
  it("format 'json': one object per line, time/level/msg first, facts after, never overwriting them", () => {
    const { lines, logger } = capture({ format: 'json' });
    logger.info({ state: 'ready', msg: 'spoof', err: new Error('boom') }, 'freezeguard: prepared');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith('\n')).toBe(true);
    const record = JSON.parse(lines[0]!);
    expect(Object.keys(record).slice(0, 3)).toEqual(['time', 'level', 'msg']);
    expect(record).toMatchObject({
      level: 'info',
      msg: 'freezeguard: prepared',
      state: 'ready',
      err: { name: 'Error', message: 'boom' },
    });
    expect(Number.isNaN(Date.parse(record.time))).toBe(false);
  });

  it('text: time, LEVEL, message, facts', () => {
    const { lines, logger } = capture({ format: 'text' });
    logger.warn({ a: 1 }, 'freezeguard: idle -> preparing');
    expect(lines[0]).toMatch(/^\S+Z WARN freezeguard: idle -> preparing \{"a":1\}\n$/);
  });

  it('takes level and format from FREEZEGUARD_LOG_LEVEL / FREEZEGUARD_LOG_FORMAT; code wins', () => {
    process.env.FREEZEGUARD_LOG_LEVEL = 'warn';
    process.env.FREEZEGUARD_LOG_FORMAT = 'json';
    const env = capture();
    env.logger.info({}, 'freezeguard: dropped');
    env.logger.warn({}, 'freezeguard: kept');
    expect(env.lines.map((l) => JSON.parse(l).msg)).toEqual(['freezeguard: kept']);
    const code = capture({ level: 'debug', format: 'text' });
    code.logger.debug({}, 'freezeguard: debug line');
    expect(code.lines[0]).toContain('DEBUG freezeguard: debug line');
  });

  it('an invalid variable fails naming it', () => {
    expect(() => envLoggerOptions({ FREEZEGUARD_LOG_FORMAT: 'xml' })).toThrow(
      /FREEZEGUARD_LOG_FORMAT/,
    );
  });
});
