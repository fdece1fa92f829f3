import { OTHER_CLIENTS, endClient, uniquePrefix } from '@x/testing';
import { InvalidArgumentError, Lock, closeRedisResources } from '../src';

describe.each(OTHER_CLIENTS)('Lock on %s', (_, open) => {
  it('hands the lock to a waiter on release, and fences go up', async () => {
    const client = await open();
    try {
      const lock = new Lock(client, 'clients', { prefix: uniquePrefix(), ttlMs: 10_000 });
      const first = await lock.acquire({ timeoutMs: 5_000 });
      const waiting = lock.acquire({ timeoutMs: 30_000 });
      expect(await lock.tryAcquire()).toBeNull();
      await first.release();
      const second = await waiting;
      expect(second.fence).toBeGreaterThan(first.fence);
      await second.release();
    } finally {
      await closeRedisResources(client);
      await endClient(client);
    }
  });
});

describe('new Lock', () => {
  it('rejects an object that is not a Redis client', () => {
    expect(() => new Lock({} as never, 'x')).toThrow(InvalidArgumentError);
  });
});
