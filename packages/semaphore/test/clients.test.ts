import { OTHER_CLIENTS, endClient, uniquePrefix } from '@x/testing';
import { InvalidArgumentError, Semaphore, closeRedisResources } from '../src';

describe.each(OTHER_CLIENTS)('Semaphore on %s', (_, open) => {
  it('grants permits up to the limit and hands one to a waiter on release', async () => {
    const client = await open();
    try {
      const name = 'clients';
      const prefix = uniquePrefix();
      const pool = await Semaphore.create(client, name, { limit: 2, leaseTtlMs: 10_000, prefix });
      const attached = await Semaphore.attach(client, name, { timeoutMs: 5_000, prefix });
      const a = await pool.acquire({ timeoutMs: 5_000 });
      const b = await attached.acquire({ timeoutMs: 5_000 });
      expect(await pool.available()).toBe(0);
      const waiting = pool.acquire({ timeoutMs: 30_000 });
      await a.release();
      const c = await waiting;
      expect(await pool.available()).toBe(0);
      await b.release();
      await c.release();
      expect(await pool.available()).toBe(2);
      await pool.close();
      await attached.close();
    } finally {
      await closeRedisResources(client);
      await endClient(client);
    }
  });
});

describe('Semaphore.create', () => {
  it('rejects an object that is not a Redis client', async () => {
    await expect(Semaphore.create({} as never, 'x', { limit: 1 })).rejects.toThrow(InvalidArgumentError);
  });
});
