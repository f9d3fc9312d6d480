import { expect, it } from 'vitest';
import { createLocalSource } from '../src/local/source.js';
import { silentLogger } from '../src/logger.js';
import { sourceBlindness } from '../src/sources/blind.js';
import { FakeClock, MemorySource } from '../src/testing.js';

// A process that follows the VM's poller hears from it only when the poller has an answer:
// on GCE, whose hanging GET answers on change, that is minutes apart. Such silence after a
// good relayed answer is waiting, not blindness; relayed errors still make it blind.

it('a follower is not blind while the poller waits, and is once the poller relays errors', () => {
  const clock = new FakeClock({ now: 1_000_000 });
  const startedAt = clock.now();
  const { source, deliver } = createLocalSource(new MemorySource(), {
    following: () => true,
    ready: Promise.resolve(),
    attach() {},
    detach: async () => {},
    askLeaderForName: async () => null,
    clock: () => clock,
    logger: () => silentLogger,
  });
  source.start({
    logger: silentLogger,
    clock,
    timers: clock,
    onDocument() {},
    onError() {},
  });
  const judge = () =>
    sourceBlindness({ health: source.health(), startedAt, now: clock.now(), blindAfterMs: 30_000 });

  // Nothing relayed yet for 30 s: blind.
  clock.setWall(startedAt + 30_000);
  expect(judge().blind).toBe(true);

  deliver({ t: 'doc', document: { incarnation: 1, events: [] } } as never);
  clock.setWall(startedAt + 30_000 + 5 * 60_000);
  expect(judge().blind).toBe(false);

  deliver({
    t: 'err',
    error: { code: 'ERR_IMDS_UNREACHABLE', message: 'timeout' },
    streak: 1,
  } as never);
  clock.setWall(startedAt + 30_000 + 6 * 60_000);
  expect(judge()).toMatchObject({
    blind: true,
    cause: expect.stringMatching(/ERR_IMDS_UNREACHABLE/),
  });
});
