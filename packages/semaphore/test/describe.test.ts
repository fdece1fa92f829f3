import { TARGETS, connect, uniquePrefix, until, type TestClient } from '@x/testing';
import { WakeBus } from '@x/redis-core';
import { InvalidArgumentError, Semaphore, describe as describeSemaphore, releaseByToken } from '../src';

describe.each(TARGETS)('describe (semaphore) on %s', (target) => {
  let client: TestClient;
  let prefix: string;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });
  beforeEach(() => {
    prefix = uniquePrefix();
  });

  it('reports the limit, the holders and the waiters of a full semaphore, and lists it', async () => {
    const pool = await Semaphore.create(client, 'gpu', { limit: 2, prefix });
    await Semaphore.create(client, 'db{1}', { limit: 1, prefix });
    const a = await pool.acquire();
    const b = await pool.acquire();
    const waiting = pool.acquire({ timeoutMs: 20_000 });
    await until(async () => (await describeSemaphore(client, 'gpu', { prefix }))!.waiters.length === 1);

    const state = (await describeSemaphore(client, 'gpu', { prefix }))!;
    expect(state).toMatchObject({ kind: 'semaphore', name: 'gpu', limit: 2, used: 2, free: 0 });
    expect(state.holders.map((h) => h.token).sort()).toEqual([a.token, b.token].sort());
    expect(state.waiters[0]!.alive).toBe(true);
    expect(await describeSemaphore.list(client, { prefix })).toEqual([{ name: 'db{1}' }, { name: 'gpu' }]);

    await releaseByToken(client, 'gpu', a.token, { prefix });
    const c = await waiting;
    expect((await describeSemaphore(client, 'gpu', { prefix }))!.holders.map((h) => h.token).sort()).toEqual([b.token, c.token].sort());
    await Promise.all([b.release(), c.release()]);
    expect(await describeSemaphore(client, 'gpu', { prefix })).toMatchObject({ used: 0, free: 2, holders: [], waiters: [] });
  });

  it('returns null for a semaphore that does not exist, and rejects a bad name', async () => {
    expect(await describeSemaphore(client, 'none', { prefix })).toBeNull();
    await expect(describeSemaphore(client, 'x'.repeat(10_000), { prefix })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
