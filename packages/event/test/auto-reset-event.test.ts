import { TARGETS, connect, connectionCount, spawnWorker, uniquePrefix, type TestClient } from '@x/testing';
import { WakeBus, keyspace, type RedisClientLike } from '@x/redis-core';
import { AutoResetEvent, EventTimeoutError, InvalidArgumentError } from '../src';
import { settle, sleep, until } from './helpers';

const fixture = require.resolve('./fixtures/waiter.cjs');

describe.each(TARGETS)('AutoResetEvent on %s', (target) => {
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

  const eventOf = (c: TestClient, name = 'ev', ttlMs?: number) => new AutoResetEvent(c, name, { prefix, ...(ttlMs ? { ttlMs } : {}) });
  const ks = (name = 'ev') => keyspace(prefix, 'auto-event', name);
  const queued = (name = 'ev') => eventOf(client, name).waiters();
  /** Whether a signal is handed to a waiter and not taken yet (the hash is gone when empty). */
  const handedOut = (name = 'ev') => client.exists(ks(name).key('handed'));
  const keysOf = (name = 'ev') => ['signals', 'queue', 'waiters', 'handed', 'meta'].map((s) => ks(name).key(s));

  it('keeps a signal set while nobody waits, and the next wait takes it at once', async () => {
    const event = eventOf(client);
    expect(await event.set()).toBe(false);
    expect(await event.set()).toBe(false);
    expect(await event.pending()).toBe(2);
    expect(await event.isSet()).toBe(true);
    await eventOf(other).wait({ timeoutMs: 0 });
    expect(await event.pending()).toBe(1);
    await eventOf(other).wait({ timeoutMs: 0 });
    expect(await event.pending()).toBe(0);
    expect(await event.isSet()).toBe(false);
  });

  it('wakes exactly one of two waiters per set', async () => {
    const event = eventOf(client);
    const returned: number[] = [];
    const controller = new AbortController();
    const waits = [0, 1].map((i) => settle(eventOf(other).wait({ signal: controller.signal }).then(() => returned.push(i))));
    await until(async () => (await queued()) === 2);
    expect(await event.set()).toBe(true);
    await until(() => returned.length === 1);
    expect(await queued()).toBe(1);
    expect(await event.pending()).toBe(0);
    controller.abort(new Error('enough'));
    const outcomes = await Promise.all(waits);
    expect(outcomes.filter((o) => o.ok)).toHaveLength(1);
    expect(await event.pending()).toBe(0);
  });

  it('serves waiters in FIFO order', async () => {
    const event = eventOf(client);
    const order: number[] = [];
    const waits: Promise<unknown>[] = [];
    for (let i = 0; i < 4; i++) {
      waits.push(eventOf(i % 2 ? other : client).wait({ timeoutMs: 20_000 }).then(() => order.push(i)));
      await until(async () => (await queued()) === i + 1);
    }
    for (let i = 0; i < 4; i++) {
      await event.set();
      await until(() => order.length === i + 1);
    }
    await Promise.all(waits);
    expect(order).toEqual([0, 1, 2, 3]);
  });

  it('has each of 1,000 sets consumed by exactly one of 10 waiters', async () => {
    const event = eventOf(client, 'many');
    const controller = new AbortController();
    const perWaiter = Array.from({ length: 10 }, () => 0);
    let consumed = 0;
    const waiters = perWaiter.map(async (_, i) => {
      const mine = eventOf(i % 2 ? other : client, 'many');
      for (;;) {
        const outcome = await settle(mine.wait({ signal: controller.signal }));
        if (!outcome.ok) return;
        perWaiter[i]! += 1;
        consumed += 1;
        if (consumed === 1_000) controller.abort(new Error('all consumed'));
      }
    });
    await until(async () => (await queued('many')) === 10);
    for (let batch = 0; batch < 20; batch++) await Promise.all(Array.from({ length: 50 }, () => event.set()));
    await Promise.all(waiters);
    expect(consumed).toBe(1_000);
    expect(await event.pending()).toBe(0);
    expect(perWaiter.filter((n) => n > 0).length).toBeGreaterThan(1);
    expect(await queued('many')).toBe(0);
  }, 120_000);

  it('rejects with EventTimeoutError after timeoutMs, leaves the queue and consumes nothing', async () => {
    const event = eventOf(client);
    const error = await event.wait({ timeoutMs: 100 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EventTimeoutError);
    expect((error as EventTimeoutError).code).toBe('EVENT_TIMEOUT');
    expect(await queued()).toBe(0);
    await event.set();
    expect(await event.pending()).toBe(1);
  });

  it('a waiter cancelled by its signal consumes nothing', async () => {
    const event = eventOf(client);
    const controller = new AbortController();
    const waiting = settle(eventOf(other).wait({ signal: controller.signal }));
    await until(async () => (await queued()) === 1);
    controller.abort(new Error('gave up'));
    const outcome = await waiting;
    expect((outcome as { error: Error }).error.message).toBe('gave up');
    expect(await queued()).toBe(0);
    expect(await event.set()).toBe(false);
    expect(await event.pending()).toBe(1);
  });

  it('gives back a signal handed to a waiter that gave up at the same moment', async () => {
    // set and abort race; whichever wins, the signal is either taken by the waiter or kept.
    for (let round = 0; round < 15; round++) {
      const name = `race-${round}`;
      const event = eventOf(client, name);
      const controller = new AbortController();
      const waiting = settle(eventOf(other, name).wait({ signal: controller.signal }));
      await until(async () => (await queued(name)) === 1);
      const set = event.set();
      if (round % 3 === 0) controller.abort(new Error('cancelled'));
      else setTimeout(() => controller.abort(new Error('cancelled')), round % 3);
      await set;
      const outcome = await waiting;
      expect(await event.pending()).toBe(outcome.ok ? 0 : 1);
      expect(await queued(name)).toBe(0);
      expect(await handedOut(name)).toBe(0);
    }
  });

  it('gives back a signal handed to a waiter whose cancel was already on its way', async () => {
    // The waiter's commands pass through a gate: its cancel is held back while set() hands it the
    // signal, so the cancel finds a signal handed to a waiter that gave up.
    let release: (() => void) | undefined;
    let gate: Promise<void> | undefined;
    const through = async () => gate && (await gate);
    const gated: RedisClientLike = {
      evalSha: async (sha, options) => (await through(), client.evalSha(sha, options as never)),
      eval: async (script, options) => (await through(), client.eval(script, options as never)),
      duplicate: () => client.duplicate(),
    };
    try {
      const event = eventOf(other, 'gated');
      const controller = new AbortController();
      const waiting = settle(new AutoResetEvent(gated, 'gated', { prefix }).wait({ signal: controller.signal }));
      await until(async () => (await queued('gated')) === 1);
      await sleep(100); // the reply of its attempt is in: it waits for a message now
      gate = new Promise((resolve) => (release = resolve));
      controller.abort(new Error('gave up'));
      expect(await event.set()).toBe(true);
      expect(await handedOut('gated')).toBe(1);
      release!();
      const outcome = await waiting;
      expect(outcome.ok).toBe(false);
      expect(await event.pending()).toBe(1);
      expect(await handedOut('gated')).toBe(0);
    } finally {
      release?.();
      await WakeBus.close(gated);
    }
  });

  it('passes on a signal handed to a waiter killed with SIGKILL in the queue', async () => {
    const event = eventOf(client, 'dead');
    const worker = spawnWorker(fixture, { args: [target, prefix, 'dead'], crashAt: 'queued' });
    await worker.reached('queued');
    await worker.kill();
    const behind = eventOf(other, 'dead').wait({ timeoutMs: 40_000 });
    await until(async () => (await queued('dead')) === 2);
    // The dead waiter is at the head: the signal is handed to it, and passed on once its own
    // short lease runs out.
    expect(await event.set()).toBe(true);
    await behind;
    expect(await event.pending()).toBe(0);
    expect(worker.reports).toEqual([]);
  }, 60_000);

  it('clear drops the kept signals', async () => {
    const event = eventOf(client);
    await event.set();
    await event.set();
    expect(await event.clear()).toBe(2);
    expect(await event.pending()).toBe(0);
    await expect(event.wait({ timeoutMs: 50 })).rejects.toBeInstanceOf(EventTimeoutError);
  });

  it('keeps signals nobody waited for no longer than ttlMs', async () => {
    const event = eventOf(client, 'short', 200);
    await event.set();
    expect(await event.pending()).toBe(1);
    await sleep(300);
    expect(await event.pending()).toBe(0);
    await until(async () => (await client.exists(keysOf('short'))) === 0, 5_000);
  });

  it('without ttlMs a signal is kept with no expiry', async () => {
    const event = eventOf(client, 'kept');
    await event.set();
    expect(await client.pTTL(ks('kept').key('signals'))).toBe(-1);
  });

  it('keeps 300 waiters of one process on 2 connections', async () => {
    const name = `conn-${prefix}`;
    const own = await connect(target, { name });
    try {
      const controller = new AbortController();
      const waits = Array.from({ length: 300 }, () => settle(new AutoResetEvent(own, 'crowd', { prefix }).wait({ signal: controller.signal })));
      await until(async () => (await queued('crowd')) === 300);
      expect(await connectionCount(target, name)).toBe(target === 'cluster' ? 3 + 1 : 2);
      for (let i = 0; i < 100; i++) await eventOf(client, 'crowd').set();
      await until(async () => (await queued('crowd')) === 200);
      controller.abort(new Error('enough'));
      const outcomes = await Promise.all(waits);
      expect(outcomes.filter((o) => o.ok)).toHaveLength(100);
      expect(await eventOf(client, 'crowd').pending()).toBe(0);
    } finally {
      await WakeBus.close(own);
      await own.close();
    }
  }, 60_000);

  it('rejects bad names, options and waits with InvalidArgumentError before writing anything', async () => {
    for (const ttlMs of [0, -1, 1.5, NaN, 2 ** 31, '100']) {
      expect(() => new AutoResetEvent(client, 'bad', { prefix, ttlMs: ttlMs as number })).toThrow(InvalidArgumentError);
    }
    for (const name of ['', 'x'.repeat(513), 3]) expect(() => new AutoResetEvent(client, name as string, { prefix })).toThrow(InvalidArgumentError);
    expect(() => new AutoResetEvent(client, 'bad', { prefix: 'a}b' })).toThrow(InvalidArgumentError);
    const event = eventOf(client, 'bad');
    await expect(event.wait({ timeoutMs: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(event.wait({ timeoutMs: 1.5 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(event.wait({ signal: {} as never })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await client.exists(keysOf('bad'))).toBe(0);
  });
});
