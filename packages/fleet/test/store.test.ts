import { systemTimers } from '@freezeguard/core';
import { recordingLogger } from '@freezeguard/core/testing';
import { type RedisHandle, startRedis, until, wait } from '@freezeguard/test-utils';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetStore } from '../src/store.js';

let redis: RedisHandle;
beforeAll(async () => {
  redis = await startRedis({ own: true });
});
afterAll(async () => {
  await redis?.stop();
});

describe('FleetStore subscriptions', () => {
  // A member subscribes to its VM's channel as soon as it starts, while its connection
  // is still being made. ioredis used to write that SUBSCRIBE before its ready check,
  // which Redis then refused: the connection was reset and the subscription lost.
  it('a subscription made while connecting is kept, and heard once subscribed() resolves', async () => {
    const publisher = new Redis(redis.url);
    const rounds = 12;
    let heard = 0;
    try {
      for (let i = 0; i < rounds; i++) {
        const app = new Redis(redis.url, { lazyConnect: true });
        // The subscription is made the moment the subscriber connection is up but not
        // yet ready (ioredis still sending its CLIENT commands): the window a member's
        // first election falls in.
        const got: string[] = [];
        const connected = new Promise<void>((resolve) => {
          const duplicate = app.duplicate.bind(app);
          app.duplicate = ((options: { connectionName?: string }) => {
            const c = duplicate(options);
            if (options.connectionName?.endsWith(':sub')) c.once('connect', () => resolve());
            return c;
          }) as typeof app.duplicate;
        });
        const logger = recordingLogger();
        const store = new FleetStore(app, {
          logger,
          timers: systemTimers,
          opTimeoutMs: 2000,
          name: `store-test-${i}`,
          onUp() {},
        });
        await connected;
        store.subscribe('fg-store-test', (m) => got.push(m));
        await store.subscribed('fg-store-test');
        // Published after subscribed(): must arrive, on the first connection.
        await publisher.publish('fg-store-test', `m${i}`);
        await until(() => got.includes(`m${i}`), 2000, `message m${i}`);
        heard++;
        await wait(50);
        expect(logger.lines.map((l) => l.msg)).not.toContain('freezeguard: Redis connection error');
        await store.close();
        app.disconnect();
      }
    } finally {
      publisher.disconnect();
    }
    process.stdout.write(`store subscriptions: ${heard}/${rounds} heard on the first connection\n`);
    expect(heard).toBe(rounds);
  });
});
