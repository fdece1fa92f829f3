import { TARGETS, connect, connectionCount, onEveryNode, settle, spawnWorker, uniquePrefix, until, type TestClient } from '@x/testing';
import { WakeBus, keyspace } from '@x/redis-core';
import { InvalidArgumentError, Lock, LockNotHeldError, LockTimeoutError, type LockHandle } from '../src';

const fixture = require.resolve('./fixtures/contender.cjs');

describe.each(TARGETS)('Lock on %s', (target) => {
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
  const lockOf = (c: TestClient, name = 'res', ttlMs = 30_000, autoExtend = true) => new Lock(c, name, { prefix, ttlMs, autoExtend });

  describe('tryAcquire', () => {
    it('takes a free lock and returns null while it is held', async () => {
      const a = await lockOf(client).tryAcquire();
      expect(a).not.toBeNull();
      expect(await lockOf(other).tryAcquire()).toBeNull();
      await a!.release();
      const b = await lockOf(other).tryAcquire();
      expect(b).not.toBeNull();
      expect(b!.fence).toBeGreaterThan(a!.fence);
      await b!.release();
    });

    it('reports the holder with inspect and isLocked', async () => {
      const lock = lockOf(client);
      expect(await lock.inspect()).toEqual({ locked: false, fence: null, expiresAt: null, waiters: 0 });
      const held = (await lock.tryAcquire())!;
      const state = await lock.inspect();
      expect(state).toEqual({ locked: true, fence: held.fence, expiresAt: held.expiresAt, waiters: 0 });
      expect(await lock.isLocked()).toBe(true);
      await held.release();
      expect(await lock.isLocked()).toBe(false);
    });
  });

  describe('acquire', () => {
    it('grants waiters in FIFO order, one at a time', async () => {
      const lock = lockOf(client);
      const first = await lock.acquire();
      const order: number[] = [];
      const waits = [0, 1, 2, 3].map(async (i) => {
        await until(async () => (await lock.inspect()).waiters === i); // queue them in order
        const p = lock.acquire({ timeoutMs: 20_000 }).then(async (h) => {
          order.push(i);
          await h.release();
        });
        return p;
      });
      await until(async () => (await lock.inspect()).waiters === 4);
      await first.release();
      await Promise.all(waits);
      expect(order).toEqual([0, 1, 2, 3]);
    });

    it('hands the lock to the head waiter inside release, so a newcomer cannot barge in', async () => {
      const lock = lockOf(client);
      const held = await lock.acquire();
      const waiting = lockOf(other).acquire({ timeoutMs: 20_000 });
      await until(async () => (await lock.inspect()).waiters === 1);
      await held.release();
      // Right after the release, before the waiter could have made any call of its own.
      expect(await lock.tryAcquire()).toBeNull();
      const next = await waiting;
      expect(next.fence).toBeGreaterThan(held.fence);
      expect((await lock.inspect()).fence).toBe(next.fence);
      await next.release();
    });

    it('rejects with LockTimeoutError after timeoutMs and leaves the queue', async () => {
      const lock = lockOf(client);
      const held = await lock.acquire();
      const error = await lockOf(other).acquire({ timeoutMs: 100 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LockTimeoutError);
      expect((error as LockTimeoutError).code).toBe('LOCK_TIMEOUT');
      expect((await lock.inspect()).waiters).toBe(0);
      await held.release();
      expect(await lock.isLocked()).toBe(false);
    });

    it('rejects with the signal reason when aborted and leaves the queue', async () => {
      const lock = lockOf(client);
      const held = await lock.acquire();
      const controller = new AbortController();
      const waiting = settle(lockOf(other).acquire({ signal: controller.signal }));
      await until(async () => (await lock.inspect()).waiters === 1);
      controller.abort(new Error('shutting down'));
      const outcome = await waiting;
      expect(outcome.ok).toBe(false);
      expect((outcome as { error: Error }).error.message).toBe('shutting down');
      expect((await lock.inspect()).waiters).toBe(0);
      await held.release();
    });

    it('gives back a grant that was in flight when the acquire was cancelled', async () => {
      // Release and abort race; whichever wins, the lock must never be left held by the cancelled wait.
      for (let round = 0; round < 15; round++) {
        const lock = lockOf(client, `race-${round}`);
        const held = await lock.acquire();
        const controller = new AbortController();
        const waiting = settle(lockOf(other, `race-${round}`).acquire({ signal: controller.signal }));
        await until(async () => (await lock.inspect()).waiters === 1);
        const released = held.release();
        if (round % 3 === 0) controller.abort(new Error('cancelled'));
        else setTimeout(() => controller.abort(new Error('cancelled')), round % 3);
        await released;
        const outcome = await waiting;
        if (outcome.ok) {
          expect((await lock.inspect()).fence).toBe(outcome.value.fence);
          await outcome.value.release();
        }
        expect(await lock.isLocked()).toBe(false);
        expect((await lock.inspect()).waiters).toBe(0);
      }
    });

    it('is not re-entrant: a second acquire by the holder waits like anyone else', async () => {
      const lock = lockOf(client);
      const held = await lock.acquire();
      await expect(lock.acquire({ timeoutMs: 50 })).rejects.toBeInstanceOf(LockTimeoutError);
      await held.release();
    });

    it('gives 1,000 grants to 20 contenders with strictly increasing fences and never two holders', async () => {
      const locks = Array.from({ length: 20 }, (_, i) => lockOf(i % 2 ? client : other, 'contended'));
      const fences: number[] = [];
      let holding = 0;
      let maxHolding = 0;
      await Promise.all(
        locks.map(async (lock) => {
          while (fences.length < 1_000) {
            const held = await lock.acquire({ timeoutMs: 60_000 });
            holding += 1;
            maxHolding = Math.max(maxHolding, holding);
            fences.push(held.fence);
            held.assertHeld();
            await Promise.resolve();
            holding -= 1;
            await held.release();
          }
        }),
      );
      expect(maxHolding).toBe(1);
      expect(fences.length).toBeGreaterThanOrEqual(1_000);
      for (let i = 1; i < fences.length; i++) expect(fences[i]!).toBeGreaterThan(fences[i - 1]!);
    }, 120_000);

    it('keeps 10,000 waiters of one process on 2 connections', async () => {
      const name = `conn-${prefix}`;
      const own = await connect(target, { name });
      try {
        const lock = new Lock(own, 'crowded', { prefix });
        const held = await lock.acquire();
        const controller = new AbortController();
        const waits = Array.from({ length: 10_000 }, () => settle(lock.acquire({ signal: controller.signal })));
        await until(async () => (await lock.inspect()).waiters === 10_000, 60_000);
        // The client and one subscriber. A cluster client has a connection per master (3 here) and
        // opens a sharded subscriber only for the shard that owns the lock's slot.
        expect(await connectionCount(target, name)).toBe(target === 'cluster' ? 3 + 1 : 2);
        controller.abort(new Error('enough'));
        const outcomes = await Promise.all(waits);
        expect(outcomes.every((o) => !o.ok)).toBe(true);
        expect((await lock.inspect()).waiters).toBe(0);
        await held.release();
      } finally {
        await WakeBus.close(own);
        await own.close();
      }
    }, 120_000);
  });

  describe('withLock', () => {
    it('returns what fn returns and releases', async () => {
      const lock = lockOf(client);
      const result = await lock.withLock(async (held) => {
        expect(await lock.isLocked()).toBe(true);
        return held.fence;
      });
      expect(typeof result).toBe('number');
      expect(await lock.isLocked()).toBe(false);
    });

    it('releases and rethrows when fn throws', async () => {
      const lock = lockOf(client);
      await expect(lock.withLock(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
      expect(await lock.isLocked()).toBe(false);
    });
  });

  describe('handle', () => {
    it('releases at the end of an await using block', async () => {
      const lock = lockOf(client);
      {
        await using held = await lock.acquire();
        expect(held.fence).toBeGreaterThan(0);
        expect(await lock.isLocked()).toBe(true);
      }
      expect(await lock.isLocked()).toBe(false);
    });

    it('release is idempotent for the holder', async () => {
      const held = (await lockOf(client).tryAcquire())!;
      await held.release();
      await held.release();
      expect(await lockOf(client).isLocked()).toBe(false);
    });

    it('extend moves expiresAt forward', async () => {
      const held = (await lockOf(client, 'ext', 1_000, false).tryAcquire())!;
      const before = held.expiresAt;
      const after = await held.extend(60_000);
      expect(after).toBeGreaterThan(before);
      expect(held.expiresAt).toBe(after);
      expect((await lockOf(client, 'ext').inspect()).expiresAt).toBe(after);
      await held.release();
    });

    it('keeps the lease alive past its TTL with autoExtend', async () => {
      // A TTL of 1 s renewed every third of it, held for 2.5 TTLs: slack enough for a loaded CI machine.
      const lock = lockOf(client, 'auto', 1_000, true);
      const held = (await lock.tryAcquire())!;
      await new Promise((r) => setTimeout(r, 2_500));
      held.assertHeld();
      expect(held.signal.aborted).toBe(false);
      expect(await lockOf(other, 'auto').tryAcquire()).toBeNull();
      await held.release();
    });

    it('without autoExtend: signal aborts at the deadline, then release, extend and assertHeld throw LockNotHeldError', async () => {
      const lock = lockOf(client, 'expiring', 200, false);
      const held = (await lock.tryAcquire())!;
      await new Promise<void>((resolve) => held.signal.addEventListener('abort', () => resolve()));
      expect(held.signal.reason).toBeInstanceOf(LockNotHeldError);
      expect(() => held.assertHeld()).toThrow(LockNotHeldError);
      await until(async () => !(await lock.isLocked()));
      const next = (await lockOf(other, 'expiring').tryAcquire())!;
      expect(next.fence).toBeGreaterThan(held.fence);
      await expect(held.extend()).rejects.toBeInstanceOf(LockNotHeldError);
      const error = await held.release().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LockNotHeldError);
      expect((error as LockNotHeldError).code).toBe('LOCK_NOT_HELD');
      // The new holder was not disturbed.
      expect((await lock.inspect()).fence).toBe(next.fence);
      await next.release();
    });

    it("aborts the holder's signal before another holder is granted when the server is paused past the TTL", async () => {
      const ttlMs = 500;
      const held = (await lockOf(client, 'paused', ttlMs).tryAcquire())!;
      const events: string[] = [];
      held.signal.addEventListener('abort', () => events.push('holder lost'));
      const waiting = lockOf(other, 'paused', ttlMs)
        .acquire({ timeoutMs: 30_000 })
        .then((h) => {
          events.push('next granted');
          return h;
        });
      await until(async () => (await lockOf(other, 'paused').inspect()).waiters === 1);
      await onEveryNode(target, ['CLIENT', 'PAUSE', String(ttlMs * 4), 'ALL']);
      const next = await waiting;
      expect(events).toEqual(['holder lost', 'next granted']);
      expect(next.fence).toBeGreaterThan(held.fence);
      await expect(held.release()).rejects.toBeInstanceOf(LockNotHeldError);
      await next.release();
    });
  });

  describe('crashes', () => {
    it('replaces a holder killed with SIGKILL within ttlMs', async () => {
      const ttlMs = 1_000;
      const worker = spawnWorker(fixture, { args: [target, prefix, 'crash', String(ttlMs), 'hold'], crashAt: 'holding' });
      await worker.reached('holding');
      const deadFence = (worker.reports[0] as { fence: number }).fence;
      await worker.kill();
      const lock = lockOf(client, 'crash', ttlMs);
      expect(await lock.isLocked()).toBe(true);
      const next = await lock.acquire({ timeoutMs: ttlMs * 10 });
      expect(next.fence).toBeGreaterThan(deadFence);
      await next.release();
    });

    it('does not let a waiter killed in the queue stall it', async () => {
      const ttlMs = 30_000;
      const lock = lockOf(client, 'deadwaiter', ttlMs);
      const held = await lock.acquire();
      const worker = spawnWorker(fixture, { args: [target, prefix, 'deadwaiter', String(ttlMs), 'wait'], crashAt: 'queued' });
      await worker.reached('queued');
      await worker.kill();
      const behind = lockOf(other, 'deadwaiter', ttlMs).acquire({ timeoutMs: ttlMs - 5_000 });
      await until(async () => (await lock.inspect()).waiters === 2);
      await held.release();
      // The dead waiter's own short lease runs out long before the lock's TTL would.
      const next = await behind;
      expect(next.fence).toBeGreaterThan(held.fence);
      await next.release();
    }, 60_000);
  });

  describe('bad input', () => {
    const bad = [0, -1, NaN, 1.5, 99, 2 ** 31, '1000', Infinity];
    it.each(bad)('rejects ttlMs %p with InvalidArgumentError and writes nothing', async (ttlMs) => {
      expect(() => new Lock(client, 'bad', { prefix, ttlMs: ttlMs as number })).toThrow(InvalidArgumentError);
      const ks = keyspace(prefix, 'lock', 'bad');
      expect(await client.exists(['holders', 'grants', 'queue', 'waiters', 'meta'].map((s) => ks.key(s)))).toBe(0);
    });

    it.each(['', 'x'.repeat(513), 7, null])('rejects the name %p with InvalidArgumentError', (name) => {
      expect(() => new Lock(client, name as string, { prefix })).toThrow(InvalidArgumentError);
    });

    it('rejects a prefix with braces, bad timeouts, signals and extend TTLs', async () => {
      expect(() => new Lock(client, 'n', { prefix: 'a{b' })).toThrow(InvalidArgumentError);
      expect(() => new Lock(client, 'n', { prefix, autoExtend: 'yes' as never })).toThrow(InvalidArgumentError);
      const lock = lockOf(client, 'n');
      await expect(lock.acquire({ timeoutMs: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(lock.acquire({ timeoutMs: 0.5 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(lock.acquire({ signal: 'no' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
      const ks = keyspace(prefix, 'lock', 'n');
      expect(await client.exists(['holders', 'grants', 'queue', 'waiters', 'meta'].map((s) => ks.key(s)))).toBe(0);
      const held = (await lock.tryAcquire())!;
      await expect(held.extend(0)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(held.extend(NaN)).rejects.toBeInstanceOf(InvalidArgumentError);
      await held.release();
    });
  });
});

// Keep the type import used: a handle is what acquire resolves to.
export type { LockHandle };
