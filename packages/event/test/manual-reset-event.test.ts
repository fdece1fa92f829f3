import { TARGETS, connect, connectionCount, uniquePrefix, type TestClient } from '@x/testing';
import { WakeBus, keyspace } from '@x/redis-core';
import { EventTimeoutError, InvalidArgumentError, ManualResetEvent } from '../src';
import { killSubscriberWhile, settle, sleep, subscribers, until } from './helpers';

describe.each(TARGETS)('ManualResetEvent on %s', (target) => {
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

  const eventOf = (c: TestClient, name = 'ev', ttlMs?: number) => new ManualResetEvent(c, name, { prefix, ...(ttlMs ? { ttlMs } : {}) });
  const stateKey = (name = 'ev') => keyspace(prefix, 'manual-event', name).key('state');

  it('set wakes every waiter, and later waits return at once until reset', async () => {
    const event = eventOf(client);
    const woken: number[] = [];
    const waits = Array.from({ length: 5 }, (_, i) => eventOf(i % 2 ? other : client).wait({ timeoutMs: 20_000 }).then(() => woken.push(i)));
    await until(() => WakeBus.for(client).listenerCount + WakeBus.for(other).listenerCount === 5);
    await sleep(50);
    expect(woken).toEqual([]);
    await event.set();
    await Promise.all(waits);
    expect(woken.sort()).toEqual([0, 1, 2, 3, 4]);
    expect(await event.isSet()).toBe(true);
    await eventOf(other).wait({ timeoutMs: 0 });
    await event.reset();
    expect(await event.isSet()).toBe(false);
    await expect(eventOf(other).wait({ timeoutMs: 50 })).rejects.toBeInstanceOf(EventTimeoutError);
  });

  it('a wait that began before a set()+reset() pair still returns', async () => {
    const event = eventOf(client);
    const waiting = settle(eventOf(other).wait({ timeoutMs: 20_000 }));
    await until(() => WakeBus.for(other).listenerCount === 1);
    await sleep(50);
    await event.set();
    await event.reset();
    expect((await waiting).ok).toBe(true);
    expect(await event.isSet()).toBe(false);
  });

  it('is a boolean: set twice and reset once, it is unset', async () => {
    const event = eventOf(client);
    await event.set();
    await event.set();
    await event.reset();
    expect(await event.isSet()).toBe(false);
    await expect(event.wait({ timeoutMs: 50 })).rejects.toBeInstanceOf(EventTimeoutError);
  });

  it('wakes a waiter whose subscriber reconnected while a set()+reset() pair went by', async () => {
    const name = `mre-${prefix}`;
    const own = await connect(target, { name });
    try {
      // A first pair loads the scripts on the node, so that the pair below is not delayed by a
      // NOSCRIPT round trip (the subscriber would be back by then).
      await eventOf(client, 'flaky').set();
      await eventOf(client, 'flaky').reset();
      const waiting = settle(new ManualResetEvent(own, 'flaky', { prefix }).wait({ timeoutMs: 20_000 }));
      await until(async () => (await subscribers(target, name)).length === 1);
      await sleep(50);
      // The pair is published while the subscriber is gone: only the re-check after the
      // reconnect (which compares generations) can wake the waiter.
      const killed = await killSubscriberWhile(target, name, (admin) => {
        const event = new ManualResetEvent(admin, 'flaky', { prefix });
        return [event.set(), event.reset()];
      });
      expect(killed).toBe(1);
      expect(await eventOf(client, 'flaky').isSet()).toBe(false);
      expect((await waiting).ok).toBe(true);
    } finally {
      await WakeBus.close(own);
      await own.close();
    }
  }, 30_000);

  it('rejects with EventTimeoutError after timeoutMs and with the signal reason when aborted', async () => {
    const error = await eventOf(client).wait({ timeoutMs: 100 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EventTimeoutError);
    expect((error as EventTimeoutError).code).toBe('EVENT_TIMEOUT');
    const controller = new AbortController();
    const waiting = settle(eventOf(client).wait({ signal: controller.signal }));
    await until(() => WakeBus.for(client).listenerCount === 1);
    controller.abort(new Error('stop'));
    expect(((await waiting) as { error: Error }).error.message).toBe('stop');
    expect(WakeBus.for(client).listenerCount).toBe(0);
  });

  it('lets its key expire after ttlMs without use, and keeps none without ttlMs', async () => {
    await eventOf(client, 'short', 200).set();
    expect(await client.exists(stateKey('short'))).toBe(1);
    await until(async () => (await client.exists(stateKey('short'))) === 0, 5_000);
    await eventOf(client, 'long').set();
    expect(await client.pTTL(stateKey('long'))).toBe(-1);
  });

  it('keeps 300 waiters of one process on 2 connections', async () => {
    const name = `conn-${prefix}`;
    const own = await connect(target, { name });
    try {
      const waits = Array.from({ length: 300 }, () => new ManualResetEvent(own, 'crowd', { prefix }).wait({ timeoutMs: 30_000 }));
      await until(() => WakeBus.for(own).listenerCount === 300);
      expect(await connectionCount(target, name)).toBe(target === 'cluster' ? 3 + 1 : 2);
      await eventOf(client, 'crowd').set();
      await Promise.all(waits);
    } finally {
      await WakeBus.close(own);
      await own.close();
    }
  });

  it('rejects bad names and options with InvalidArgumentError before writing anything', async () => {
    for (const ttlMs of [0, -1, 1.5, 2 ** 31]) expect(() => new ManualResetEvent(client, 'bad', { prefix, ttlMs })).toThrow(InvalidArgumentError);
    expect(() => new ManualResetEvent(client, '', { prefix })).toThrow(InvalidArgumentError);
    await expect(eventOf(client, 'bad').wait({ timeoutMs: NaN })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await client.exists(stateKey('bad'))).toBe(0);
  });
});
