import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { WakeBus, keyspace } from '@x/redis-core';
import { CountDownLatch, EventTimeoutError, InvalidArgumentError } from '../src';
import { killSubscriberWhile, settle, sleep, subscribers, until } from './helpers';

describe.each(TARGETS)('CountDownLatch on %s', (target) => {
  let client: TestClient;
  let other: TestClient;
  let prefix: string;
  beforeAll(async () => {
    client = await connect(target);
    other = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await WakeBus.close(other);
    await client.close();
    await other.close();
  });
  beforeEach(() => {
    prefix = uniquePrefix();
  });

  const latchOf = (c: TestClient, count: number, name = 'l', ttlMs?: number) =>
    new CountDownLatch(c, name, { count, prefix, ...(ttlMs ? { ttlMs } : {}) });
  const stateKey = (name = 'l') => keyspace(prefix, 'latch', name).key('state');

  it('wakes every waiter when the count reaches zero, and not before', async () => {
    const latch = latchOf(client, 3);
    const woken: number[] = [];
    const waits = Array.from({ length: 4 }, (_, i) => latchOf(i % 2 ? other : client, 3).wait({ timeoutMs: 20_000 }).then(() => woken.push(i)));
    await until(() => WakeBus.for(client).listenerCount + WakeBus.for(other).listenerCount === 4);
    expect(await latch.countDown()).toBe(2);
    expect(await latchOf(other, 3).countDown()).toBe(1);
    await sleep(50);
    expect(woken).toEqual([]);
    expect(await latch.countDown()).toBe(0);
    await Promise.all(waits);
    expect(woken.sort()).toEqual([0, 1, 2, 3]);
    await latch.wait({ timeoutMs: 0 });
  });

  it('stays at zero when counted below zero', async () => {
    const latch = latchOf(client, 2);
    expect(await latch.countDown(5)).toBe(0);
    expect(await latch.countDown()).toBe(0);
    expect(await latch.getCount()).toBe(0);
  });

  it('a second instance with another count joins the existing latch and does not reset it', async () => {
    const latch = latchOf(client, 3);
    await latch.countDown();
    const joined = latchOf(other, 10);
    expect(await joined.getCount()).toBe(2);
    expect(await joined.countDown()).toBe(1);
    expect(await latch.getCount()).toBe(1);
    await latch.countDown();
    expect(await latchOf(client, 7).getCount()).toBe(0);
  });

  it('initializes once when many instances with different counts start at the same moment', async () => {
    const counts = [4, 9, 2, 6, 3, 8];
    const seen = await Promise.all(counts.map((n, i) => latchOf(i % 2 ? other : client, n, 'race').getCount()));
    expect(new Set(seen).size).toBe(1);
    expect(counts).toContain(seen[0]);
  });

  it('wakes a waiter whose subscriber reconnected while the count reached zero', async () => {
    const name = `latch-${prefix}`;
    const own = await connect(target, { name });
    try {
      // A first count-down loads the script on the node, so that the one below is not delayed by
      // a NOSCRIPT round trip (the subscriber would be back by then).
      expect(await latchOf(client, 2, 'flaky').countDown()).toBe(1);
      const waiting = settle(new CountDownLatch(own, 'flaky', { count: 2, prefix }).wait({ timeoutMs: 20_000 }));
      await until(async () => (await subscribers(target, name)).length === 1);
      await sleep(50);
      // Zero is announced while the subscriber is gone: the re-check after the reconnect wakes it.
      const killed = await killSubscriberWhile(target, name, (admin) => [new CountDownLatch(admin, 'flaky', { count: 2, prefix }).countDown()]);
      expect(killed).toBe(1);
      expect((await waiting).ok).toBe(true);
    } finally {
      await WakeBus.close(own);
      await own.close();
    }
  }, 30_000);

  it('rejects with EventTimeoutError after timeoutMs and with the signal reason when aborted', async () => {
    const error = await latchOf(client, 1).wait({ timeoutMs: 100 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EventTimeoutError);
    const controller = new AbortController();
    const waiting = settle(latchOf(client, 1).wait({ signal: controller.signal }));
    await until(() => WakeBus.for(client).listenerCount === 1);
    controller.abort(new Error('stop'));
    expect(((await waiting) as { error: Error }).error.message).toBe('stop');
    expect(await latchOf(client, 1).getCount()).toBe(1);
  });

  it('lets its key expire after ttlMs without use', async () => {
    await latchOf(client, 2, 'short', 200).countDown();
    expect(await client.exists(stateKey('short'))).toBe(1);
    await until(async () => (await client.exists(stateKey('short'))) === 0, 5_000);
    await latchOf(client, 2, 'long').countDown();
    expect(await client.pTTL(stateKey('long'))).toBe(-1);
  });

  it('rejects bad counts, names and options with InvalidArgumentError before writing anything', async () => {
    for (const count of [0, -1, 1.5, NaN, '3', undefined]) {
      expect(() => new CountDownLatch(client, 'bad', { count: count as number, prefix })).toThrow(InvalidArgumentError);
    }
    expect(() => new CountDownLatch(client, '', { count: 1, prefix })).toThrow(InvalidArgumentError);
    expect(() => new CountDownLatch(client, 'bad', { count: 1, prefix, ttlMs: 0 })).toThrow(InvalidArgumentError);
    const latch = latchOf(client, 2, 'bad');
    for (const n of [0, -2, 1.5, NaN]) await expect(latch.countDown(n)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(latch.wait({ timeoutMs: -5 })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await client.exists(stateKey('bad'))).toBe(0);
  });
});
