import { TARGETS, connect, connectionCount, uniquePrefix, type TestClient, settle, until } from '@x/testing';
import { GrantQueue, WakeBus, keyspace } from '@x/redis-core';
import {
  InvalidArgumentError,
  PermitNotHeldError,
  Semaphore,
  SemaphoreClosedError,
  SemaphoreLimitMismatchError,
  SemaphoreNotFoundError,
  SemaphoreTimeoutError,
  type Permit,
} from '../src';
import { semaphoreScripts } from '../src/scripts';

const SUFFIXES = ['holders', 'grants', 'queue', 'waiters', 'meta', 'config'];

describe.each(TARGETS)('Semaphore on %s', (target) => {
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

  const keysOf = (name: string) => SUFFIXES.map((s) => keyspace(prefix, 'semaphore', name).key(s));
  const existing = (name: string) => client.exists(keysOf(name));
  /** Live waiters in the semaphore's queue, read through redis-core's queue. */
  const waitersOf = async (name: string) =>
    (
      await new GrantQueue(client, keyspace(prefix, 'semaphore', name), {
        limit: null,
        notHeld: (d) => new Error(d),
        timeout: () => new Error('timeout'),
      }).inspect()
    ).waiters;
  const create = (c: TestClient, name: string, limit: number, extra: { leaseTtlMs?: number; idleTtlMs?: number } = {}) =>
    Semaphore.create(c, name, { limit, prefix, ...extra });

  describe('create and attach', () => {
    it('create is idempotent: a second create with the same limit joins the same permits', async () => {
      const a = await create(client, 'pool', 2);
      const b = await create(other, 'pool', 2);
      const p1 = (await a.tryAcquire())!;
      const p2 = (await b.tryAcquire())!;
      expect(p1).not.toBeNull();
      expect(p2).not.toBeNull();
      expect(await a.tryAcquire()).toBeNull();
      expect(await b.available()).toBe(0);
      await p1.release();
      await p2.release();
      expect(await a.available()).toBe(2);
    });

    it('create with another limit rejects with SemaphoreLimitMismatchError and leaves the limit as it was', async () => {
      const a = await create(client, 'pool', 3);
      const error = await create(other, 'pool', 4).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SemaphoreLimitMismatchError);
      expect((error as SemaphoreLimitMismatchError).code).toBe('SEMAPHORE_LIMIT_MISMATCH');
      expect((error as SemaphoreLimitMismatchError).limit).toBe(3);
      expect((error as SemaphoreLimitMismatchError).requested).toBe(4);
      expect(await a.getLimit()).toBe(3);
    });

    it('attach waits for a creator and returns on its wake-up, without knowing the limit', async () => {
      // The re-check timer of attach is 5 s: with a 3 s timeout, only the creator's message can
      // end this wait in time.
      const attaching = settle(Semaphore.attach(other, 'later', { prefix, timeoutMs: 3_000 }));
      await until(() => WakeBus.for(other).listenerCount > 0);
      await new Promise((r) => setTimeout(r, 50));
      await create(client, 'later', 7);
      const outcome = await attaching;
      expect(outcome.ok).toBe(true);
      const attached = (outcome as { value: Semaphore }).value;
      expect(await attached.getLimit()).toBe(7);
      const permit = (await attached.tryAcquire({ permits: 7 }))!;
      expect(permit.permits).toBe(7);
      await permit.release();
    });

    it('attach returns at once when the semaphore exists', async () => {
      await create(client, 'there', 2);
      const attached = await Semaphore.attach(other, 'there', { prefix, timeoutMs: 0 });
      expect(await attached.getLimit()).toBe(2);
    });

    it('attach rejects with SemaphoreNotFoundError after timeoutMs and writes nothing', async () => {
      const error = await Semaphore.attach(other, 'nobody', { prefix, timeoutMs: 100 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SemaphoreNotFoundError);
      expect((error as SemaphoreNotFoundError).code).toBe('SEMAPHORE_NOT_FOUND');
      expect(await existing('nobody')).toBe(0);
      expect(WakeBus.for(other).listenerCount).toBe(0);
    });

    it('attach rejects with the signal reason when aborted', async () => {
      const controller = new AbortController();
      const attaching = settle(Semaphore.attach(other, 'nobody', { prefix, signal: controller.signal }));
      await until(() => WakeBus.for(other).listenerCount > 0);
      controller.abort(new Error('shutting down'));
      const outcome = await attaching;
      expect(outcome.ok).toBe(false);
      expect((outcome as { error: Error }).error.message).toBe('shutting down');
    });
  });

  describe('acquire and tryAcquire', () => {
    it('grants weighted permits up to the limit and reports available and holders', async () => {
      const pool = await create(client, 'w', 5);
      const a = (await pool.tryAcquire({ permits: 3 }))!;
      expect(await pool.available()).toBe(2);
      expect(await pool.tryAcquire({ permits: 3 })).toBeNull();
      const b = (await pool.tryAcquire({ permits: 2 }))!;
      expect(await pool.available()).toBe(0);
      const holders = await pool.holders();
      expect(holders.map((h) => [h.token, h.permits, h.fence, h.expiresAt]).sort()).toEqual(
        [
          [a.token, 3, a.fence, a.expiresAt],
          [b.token, 2, b.fence, b.expiresAt],
        ].sort(),
      );
      expect(b.fence).toBeGreaterThan(a.fence);
      await a.release();
      expect(await pool.available()).toBe(3);
      await b.release();
      expect(await pool.holders()).toEqual([]);
    });

    it('serves waiters in FIFO order: a large request at the head is not overtaken by small ones behind it', async () => {
      const pool = await create(client, 'fifo', 3);
      const held = await pool.acquire({ permits: 2 });
      const order: string[] = [];
      const big = pool.acquire({ permits: 3, timeoutMs: 20_000 }).then((p) => (order.push('big'), p));
      await until(async () => (await waitersOf('fifo')) === 1);
      const small = (await create(other, 'fifo', 3)).acquire({ permits: 1, timeoutMs: 20_000 }).then((p) => (order.push('small'), p));
      await until(async () => (await waitersOf('fifo')) === 2);
      // One permit is free, but the head needs three: nobody behind it may take the free one.
      expect(await pool.available()).toBe(1);
      expect(await pool.tryAcquire({ permits: 1 })).toBeNull();
      expect(order).toEqual([]);
      await held.release();
      const bigPermit = await big;
      expect(order).toEqual(['big']);
      expect(await waitersOf('fifo')).toBe(1);
      await bigPermit.release();
      const smallPermit = await small;
      expect(order).toEqual(['big', 'small']);
      await smallPermit.release();
    });

    it('hands released permits to the head waiter inside release, so a newcomer cannot barge in', async () => {
      const pool = await create(client, 'handoff', 1);
      const held = await pool.acquire();
      const waiting = (await create(other, 'handoff', 1)).acquire({ timeoutMs: 20_000 });
      await until(async () => (await waitersOf('handoff')) === 1);
      await held.release();
      // Right after the release, before the waiter could have made any call of its own.
      expect(await pool.tryAcquire()).toBeNull();
      const next = await waiting;
      expect(next.fence).toBeGreaterThan(held.fence);
      expect((await pool.holders()).map((h) => h.token)).toEqual([next.token]);
      await next.release();
    });

    it('rejects with SemaphoreTimeoutError after timeoutMs and leaves the queue', async () => {
      const pool = await create(client, 'late', 1);
      const held = await pool.acquire();
      const error = await pool.acquire({ timeoutMs: 100 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SemaphoreTimeoutError);
      expect((error as SemaphoreTimeoutError).code).toBe('SEMAPHORE_TIMEOUT');
      expect(await waitersOf('late')).toBe(0);
      await held.release();
      expect(await pool.available()).toBe(1);
    });

    it('rejects with the signal reason when aborted, leaves the queue and takes nothing', async () => {
      const pool = await create(client, 'abort', 1);
      const held = await pool.acquire();
      const controller = new AbortController();
      const waiting = settle(pool.acquire({ signal: controller.signal }));
      await until(async () => (await waitersOf('abort')) === 1);
      controller.abort(new Error('no longer needed'));
      const outcome = await waiting;
      expect((outcome as { error: Error }).error.message).toBe('no longer needed');
      expect(await waitersOf('abort')).toBe(0);
      await held.release();
      expect(await pool.available()).toBe(1);
    });

    it('gives back permits that were in flight when a waiting acquire was cancelled', async () => {
      for (let round = 0; round < 12; round++) {
        const name = `race-${round}`;
        const pool = await create(client, name, 2);
        const held = await pool.acquire({ permits: 2 });
        const controller = new AbortController();
        const waiting = settle((await create(other, name, 2)).acquire({ permits: 2, signal: controller.signal }));
        await until(async () => (await waitersOf(name)) === 1);
        const released = held.release();
        if (round % 3 === 0) controller.abort(new Error('cancelled'));
        else setTimeout(() => controller.abort(new Error('cancelled')), round % 3);
        await released;
        const outcome = await waiting;
        if (outcome.ok) {
          expect((await pool.holders()).map((h) => h.token)).toEqual([outcome.value.token]);
          await outcome.value.release();
        }
        expect(await pool.available()).toBe(2);
        expect(await waitersOf(name)).toBe(0);
      }
    });

    it('rejects a request for more permits than the limit with InvalidArgumentError and queues nothing', async () => {
      const pool = await create(client, 'big', 2);
      await expect(pool.acquire({ permits: 3 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(pool.tryAcquire({ permits: 3 })).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(await waitersOf('big')).toBe(0);
      expect(await client.exists(keysOf('big').slice(0, 5))).toBe(0);
    });

    it('gives strictly increasing fences to 200 grants among 10 contenders and never more permits than the limit', async () => {
      const pools = await Promise.all(Array.from({ length: 10 }, (_, i) => create(i % 2 ? client : other, 'busy', 3)));
      const fences: number[] = [];
      let holding = 0;
      let maxHolding = 0;
      await Promise.all(
        pools.map(async (pool, i) => {
          for (let n = 0; n < 20; n++) {
            const permits = 1 + ((i + n) % 2);
            const permit = await pool.acquire({ permits, timeoutMs: 60_000 });
            holding += permits;
            maxHolding = Math.max(maxHolding, holding);
            fences.push(permit.fence);
            await new Promise((r) => setTimeout(r, 1));
            holding -= permits;
            await permit.release();
          }
        }),
      );
      expect(maxHolding).toBeLessThanOrEqual(3);
      expect(maxHolding).toBeGreaterThan(1);
      expect(new Set(fences).size).toBe(200);
    }, 60_000);

    it('keeps 1,000 waiters of one process on 2 connections', async () => {
      const name = `conn-${prefix}`;
      const own = await connect(target, { name });
      try {
        const pool = await Semaphore.create(own, 'crowded', { limit: 1, prefix });
        const held = await pool.acquire();
        const controller = new AbortController();
        const waits = Array.from({ length: 1_000 }, () => settle(pool.acquire({ signal: controller.signal })));
        await until(async () => (await waitersOf('crowded')) === 1_000, 60_000);
        // The client and one subscriber; a cluster client has one connection per master (3) and
        // subscribes on the shard that owns the semaphore's slot.
        expect(await connectionCount(target, name)).toBe(target === 'cluster' ? 3 + 1 : 2);
        controller.abort(new Error('enough'));
        const outcomes = await Promise.all(waits);
        expect(outcomes.every((o) => !o.ok)).toBe(true);
        expect(await waitersOf('crowded')).toBe(0);
        await held.release();
      } finally {
        await WakeBus.close(own);
        await own.close();
      }
    }, 60_000);
  });

  describe('getLimit and setLimit', () => {
    it('growing the limit hands the new permits to the waiters at once', async () => {
      const pool = await create(client, 'grow', 1);
      const held = await pool.acquire();
      // Waiters re-check on their own only every few seconds: within 2 s only the wake-up sent by
      // setLimit can serve them.
      const waits = [pool.acquire({ timeoutMs: 2_000 }), (await create(other, 'grow', 1)).acquire({ timeoutMs: 2_000 })];
      await until(async () => (await waitersOf('grow')) === 2);
      expect(await pool.setLimit(3)).toBe(1);
      expect(await pool.getLimit()).toBe(3);
      const [a, b] = await Promise.all(waits);
      expect(await pool.available()).toBe(0);
      await Promise.all([held.release(), a!.release(), b!.release()]);
      expect(await pool.available()).toBe(3);
    });

    it('shrinking never revokes a held permit and only delays new grants', async () => {
      const pool = await create(client, 'shrink', 3);
      const held = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire()]);
      expect(await pool.setLimit(1)).toBe(3);
      expect(await pool.holders()).toHaveLength(3);
      for (const permit of held) permit.assertHeld();
      expect(await pool.available()).toBe(0);
      const waiting = pool.acquire({ timeoutMs: 20_000 });
      await until(async () => (await waitersOf('shrink')) === 1);
      await held[0]!.release();
      await held[1]!.release();
      // Two permits held before, one now: still at the new limit of 1, so the waiter still waits.
      expect(await waitersOf('shrink')).toBe(1);
      expect(await pool.available()).toBe(0);
      await held[2]!.release();
      const next = await waiting;
      expect(await pool.available()).toBe(0);
      await next.release();
      expect(await pool.available()).toBe(1);
    });

    it('shrinking below a waiting request rejects that request with InvalidArgumentError and serves the next one', async () => {
      const pool = await create(client, 'toosmall', 3);
      const held = await pool.acquire({ permits: 3 });
      // Within 2 s (waiters re-check on their own only every few seconds), only the wake-up sent by
      // setLimit can reject the one and serve the other.
      const big = settle(pool.acquire({ permits: 3, timeoutMs: 2_000 }));
      await until(async () => (await waitersOf('toosmall')) === 1);
      const small = pool.acquire({ permits: 1, timeoutMs: 2_000 });
      await until(async () => (await waitersOf('toosmall')) === 2);
      // Both are subscribed and parked, not in the middle of an attempt.
      await until(() => WakeBus.for(client).listenerCount === 2);
      await new Promise((r) => setTimeout(r, 200));
      await pool.setLimit(2);
      const outcome = await big;
      expect(outcome.ok).toBe(false);
      expect((outcome as { error: unknown }).error).toBeInstanceOf(InvalidArgumentError);
      await held.release();
      const next = await small;
      expect(next.permits).toBe(1);
      await next.release();
      expect(await waitersOf('toosmall')).toBe(0);
    });

    it('rejects getLimit and acquire with SemaphoreNotFoundError once the semaphore was destroyed elsewhere', async () => {
      const pool = await create(client, 'gone', 2);
      await (await create(other, 'gone', 2)).destroy();
      await expect(pool.getLimit()).rejects.toBeInstanceOf(SemaphoreNotFoundError);
      await expect(pool.available()).rejects.toBeInstanceOf(SemaphoreNotFoundError);
      await expect(pool.acquire({ timeoutMs: 1_000 })).rejects.toBeInstanceOf(SemaphoreNotFoundError);
      await expect(pool.setLimit(3)).rejects.toBeInstanceOf(SemaphoreNotFoundError);
      expect(await existing('gone')).toBe(0);
    });
  });

  describe('permits', () => {
    it('release is idempotent, extend moves expiresAt forward, and await using releases', async () => {
      const pool = await create(client, 'handle', 2, { leaseTtlMs: 1_000 });
      {
        await using permit = await pool.acquire();
        expect(await pool.available()).toBe(1);
        const before = permit.expiresAt;
        const after = await permit.extend(60_000);
        expect(after).toBeGreaterThan(before);
        expect((await pool.holders())[0]!.expiresAt).toBe(after);
      }
      expect(await pool.available()).toBe(2);
      const permit = (await pool.tryAcquire())!;
      await permit.release();
      await permit.release();
      expect(await pool.available()).toBe(2);
    });

    it('keeps a permit past its lease while the process lives', async () => {
      const pool = await create(client, 'renewed', 1, { leaseTtlMs: 300 });
      const permit = (await pool.tryAcquire())!;
      await new Promise((r) => setTimeout(r, 1_000));
      permit.assertHeld();
      expect(permit.signal.aborted).toBe(false);
      expect(await (await create(other, 'renewed', 1)).tryAcquire()).toBeNull();
      await permit.release();
    });

    it('aborts the signal of a permit whose semaphore was destroyed, then release throws PermitNotHeldError', async () => {
      const pool = await create(client, 'lost', 1, { leaseTtlMs: 300 });
      const permit = (await pool.tryAcquire())!;
      await (await create(other, 'lost', 1)).destroy();
      await new Promise<void>((resolve) => permit.signal.addEventListener('abort', () => resolve()));
      expect(permit.signal.reason).toBeInstanceOf(PermitNotHeldError);
      expect(() => permit.assertHeld()).toThrow(PermitNotHeldError);
      const error = await permit.release().catch((e: unknown) => e);
      expect((error as PermitNotHeldError).code).toBe('PERMIT_NOT_HELD');
      expect(await existing('lost')).toBe(0);
    });
  });

  describe('close and destroy', () => {
    it('close releases the permits of this instance and rejects its pending waits with SemaphoreClosedError', async () => {
      const pool = await create(client, 'closing', 2);
      const keeper = await create(other, 'closing', 2);
      await pool.acquire();
      const held = await keeper.acquire();
      const waiting = settle(pool.acquire({ permits: 2 }));
      await until(async () => (await waitersOf('closing')) === 1);
      await pool.close();
      const outcome = await waiting;
      expect((outcome as { error: unknown }).error).toBeInstanceOf(SemaphoreClosedError);
      expect((await keeper.holders()).map((h) => h.token)).toEqual([held.token]);
      expect(await waitersOf('closing')).toBe(0);
      await expect(pool.acquire()).rejects.toBeInstanceOf(SemaphoreClosedError);
      await pool.close();
      await held.release();
      expect(await keeper.available()).toBe(2);
    });

    it('destroy removes every key and wakes waiters of other processes with SemaphoreNotFoundError', async () => {
      const pool = await create(client, 'doomed', 1);
      const held = await pool.acquire();
      const waiting = settle((await create(other, 'doomed', 1)).acquire({ timeoutMs: 20_000 }));
      await until(async () => (await waitersOf('doomed')) === 1);
      await pool.destroy();
      const outcome = await waiting;
      expect((outcome as { error: unknown }).error).toBeInstanceOf(SemaphoreNotFoundError);
      expect(held.signal.aborted).toBe(true);
      expect(await existing('doomed')).toBe(0);
    });
  });

  describe('idleTtlMs', () => {
    it('lets every key expire once nobody used the semaphore for idleTtlMs', async () => {
      const pool = await create(client, 'idle', 2, { idleTtlMs: 300, leaseTtlMs: 200 });
      const permit = (await pool.tryAcquire())!;
      await permit.release();
      expect(await existing('idle')).toBeGreaterThan(0);
      await until(async () => (await existing('idle')) === 0, 10_000);
      await expect(pool.getLimit()).rejects.toBeInstanceOf(SemaphoreNotFoundError);
    });

    it('keeps the keys while a permit is held longer than idleTtlMs', async () => {
      const pool = await create(client, 'busy-idle', 2, { idleTtlMs: 300 });
      const attached = await Semaphore.attach(other, 'busy-idle', { prefix });
      const permit = await attached.acquire();
      await new Promise((r) => setTimeout(r, 1_200));
      expect(await pool.getLimit()).toBe(2);
      permit.assertHeld();
      await permit.release();
      await until(async () => (await existing('busy-idle')) === 0, 10_000);
    });

    it('without idleTtlMs the keys never expire', async () => {
      const pool = await create(client, 'forever', 2);
      await (await pool.acquire()).release();
      expect(await client.pTTL(keysOf('forever')[5]!)).toBe(-1);
    });
  });

  describe('bad input', () => {
    it.each([0, -1, 1.5, NaN, 1_000_001, '3', null, undefined])('rejects the limit %p with InvalidArgumentError and writes nothing', async (limit) => {
      await expect(Semaphore.create(client, 'bad', { limit: limit as number, prefix })).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(await existing('bad')).toBe(0);
    });

    it('rejects bad leaseTtlMs, idleTtlMs, names and prefixes before writing anything', async () => {
      for (const leaseTtlMs of [0, 99, 2 ** 31, 1.5, NaN]) {
        await expect(Semaphore.create(client, 'bad', { limit: 1, prefix, leaseTtlMs })).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(Semaphore.attach(client, 'bad', { prefix, leaseTtlMs })).rejects.toBeInstanceOf(InvalidArgumentError);
      }
      for (const idleTtlMs of [0, -5, 2 ** 31, 2.5]) {
        await expect(Semaphore.create(client, 'bad', { limit: 1, prefix, idleTtlMs })).rejects.toBeInstanceOf(InvalidArgumentError);
      }
      for (const name of ['', 'x'.repeat(513), 5]) {
        await expect(Semaphore.create(client, name as string, { limit: 1, prefix })).rejects.toBeInstanceOf(InvalidArgumentError);
      }
      await expect(Semaphore.create(client, 'bad', { limit: 1, prefix: 'a{b' })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(Semaphore.attach(client, 'bad', { prefix, timeoutMs: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(Semaphore.attach(client, 'bad', { prefix, signal: 'x' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(await existing('bad')).toBe(0);
    });

    it('rejects bad permits, timeouts, signals and limits of a live semaphore before writing anything', async () => {
      const pool = await create(client, 'live', 2);
      for (const permits of [0, -1, 1.5, NaN, 1_000_001, '1']) {
        await expect(pool.acquire({ permits: permits as number })).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(pool.tryAcquire({ permits: permits as number })).rejects.toBeInstanceOf(InvalidArgumentError);
      }
      await expect(pool.acquire({ timeoutMs: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(pool.acquire({ timeoutMs: 0.5 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(pool.acquire({ signal: 'no' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
      for (const limit of [0, 1.5, 1_000_001]) await expect(pool.setLimit(limit)).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(await client.exists(keysOf('live').slice(0, 5))).toBe(0);
      expect(await pool.getLimit()).toBe(2);
      const permit = (await pool.tryAcquire())!;
      await expect(permit.extend(0)).rejects.toBeInstanceOf(InvalidArgumentError);
      await permit.release();
    });

    it('rejects a limit out of range inside the scripts too, before any write', async () => {
      const scripts = semaphoreScripts({});
      const keys = keysOf('lua');
      const channel = keyspace(prefix, 'semaphore', 'lua').channel;
      for (const limit of ['0', '1.5', '1000001', 'x']) {
        await expect(scripts.create.run(client, keys, [limit, '', channel])).rejects.toBeInstanceOf(InvalidArgumentError);
      }
      await expect(scripts.create.run(client, keys, ['2', '0', channel])).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(await existing('lua')).toBe(0);
      const pool = await create(client, 'lua', 2);
      for (const limit of ['0', '2.5', '1000001']) {
        await expect(scripts.setLimit.run(client, keys, [limit, channel])).rejects.toBeInstanceOf(InvalidArgumentError);
      }
      expect(await pool.getLimit()).toBe(2);
    });
  });
});

// Keep the type import used: a permit is what acquire resolves to.
export type { Permit };
