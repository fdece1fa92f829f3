import { OTHER_CLIENTS, endClient, uniquePrefix } from '@x/testing';
import { InvalidArgumentError, LeasedKeyQueue, closeRedisResources } from '../src';

describe.each(OTHER_CLIENTS)('LeasedKeyQueue on %s', (_, open) => {
  it('wakes a waiting get with a put, and ack removes the item', async () => {
    const client = await open();
    try {
      const q = new LeasedKeyQueue<{ n: number }>(client, 'clients', { prefix: uniquePrefix(), defaultLeaseTimeoutMs: 10_000 });
      const waiting = q.get({ timeoutMs: 30_000 });
      await new Promise((r) => setTimeout(r, 100));
      await q.put('a', { n: 1 });
      const got = await waiting;
      expect([got.key, got.value]).toEqual(['a', { n: 1 }]);
      await q.ack(got.lease);
      expect(await q.size()).toBe(0);
      expect(await q.inflightSize()).toBe(0);
      await q.close();
    } finally {
      await closeRedisResources(client);
      await endClient(client);
    }
  });
});

describe('new LeasedKeyQueue', () => {
  it('rejects an object that is not a Redis client', () => {
    expect(() => new LeasedKeyQueue({} as never, 'x')).toThrow(InvalidArgumentError);
  });
});
