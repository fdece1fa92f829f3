import { TARGETS, connect, uniquePrefix, until, type TestClient } from '@x/testing';
import { WakeBus, keyspace } from '@x/redis-core';
import { InvalidArgumentError, Lock, XRedisError, describe as describeLock, dropWaiter, releaseByToken } from '../src';

describe.each(TARGETS)('describe (lock) on %s', (target) => {
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

  it('reports the holder, its fence and the waiters, and lists the locks under the prefix', async () => {
    const names = ['orders', 'a{b}c', '<img src=x onerror=alert(1)>', 'p:1'];
    const held = await Promise.all(names.map((n) => new Lock(client, n, { prefix }).acquire()));
    const waiting = new Lock(client, 'orders', { prefix }).acquire({ timeoutMs: 20_000 });
    await until(async () => (await describeLock(client, 'orders', { prefix }))!.waiters.length === 1);

    const state = (await describeLock(client, 'orders', { prefix }))!;
    expect(state).toMatchObject({ kind: 'lock', name: 'orders', locked: true, fence: held[0]!.fence });
    expect(state.holder).toEqual({ token: held[0]!.token, permits: 1, fence: held[0]!.fence, expiresAt: held[0]!.expiresAt });
    expect(state.waiters[0]).toMatchObject({ permits: 1, alive: true });
    expect(state.now).toBeLessThan(held[0]!.expiresAt);
    expect(await describeLock.list(client, { prefix })).toEqual([...names].sort().map((name) => ({ name })));

    await held[0]!.release();
    const next = await waiting;
    expect((await describeLock(client, 'orders', { prefix }))!.holder!.token).toBe(next.token);
    await Promise.all([next, ...held.slice(1)].map((h) => h.release()));
    expect(await describeLock(client, 'orders', { prefix })).toMatchObject({ locked: false, holder: null, waiters: [] });
  });

  it('returns null for a lock that never existed, and rejects a bad name before Redis', async () => {
    expect(await describeLock(client, 'nobody', { prefix })).toBeNull();
    expect(await describeLock.list(client, { prefix })).toEqual([]);
    await expect(describeLock(client, '', { prefix })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(describeLock.list(client, { prefix, limit: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('releases a lock by its token; the next grant has a higher fence', async () => {
    const lock = new Lock(client, 'jobs', { prefix });
    const held = await lock.acquire();
    await releaseByToken(client, 'jobs', held.token, { prefix });
    await until(() => held.signal.aborted || lock.isLocked().then((l) => !l));
    expect((await describeLock(client, 'jobs', { prefix }))!.locked).toBe(false);
    const again = await lock.acquire();
    expect(again.fence).toBeGreaterThan(held.fence);
    await again.release();
    await expect(releaseByToken(client, 'jobs', held.token, { prefix })).rejects.toMatchObject({ code: 'NOT_HELD' });
  });

  it('drops a dead waiter and refuses a live one', async () => {
    const held = await new Lock(client, 'q', { prefix }).acquire();
    const ks = keyspace(prefix, 'lock', 'q');
    const live = new Lock(client, 'q', { prefix }).acquire({ timeoutMs: 20_000 });
    await until(async () => (await describeLock(client, 'q', { prefix }))!.waiters.length === 1);
    // Behind it, a waiter whose process died: its own lease is in the past.
    await client.rPush(ks.key('queue'), 'dead-token');
    await client.hSet(ks.key('waiters'), 'dead-token', '1|1|30000');
    const [alive, dead] = (await describeLock(client, 'q', { prefix }))!.waiters;
    expect(dead).toMatchObject({ token: 'dead-token', alive: false });
    expect(alive!.alive).toBe(true);

    await expect(dropWaiter(client, 'q', alive!.token, { prefix })).rejects.toBeInstanceOf(XRedisError);
    await expect(dropWaiter(client, 'q', alive!.token, { prefix })).rejects.toMatchObject({ code: 'WAITER_ALIVE' });
    await dropWaiter(client, 'q', 'dead-token', { prefix });
    expect((await describeLock(client, 'q', { prefix }))!.waiters.map((w) => w.token)).toEqual([alive!.token]);
    await expect(dropWaiter(client, 'q', 'dead-token', { prefix })).rejects.toMatchObject({ code: 'WAITER_NOT_FOUND' });
    await held.release();
    await (await live).release();
  });
});
