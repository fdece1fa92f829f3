import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { WakeBus, keyspace } from '@x/redis-core';
import {
  IdempotencyFingerprintMismatchError,
  IdempotencyInProgressError,
  IdempotencyLeaseLostError,
  IdempotencyStore,
  ReplayedError,
  type Acquired,
} from '../src';
import { adminClient, gate, until } from './helpers';

class CardDeclinedError extends Error {
  readonly code = 'CARD_DECLINED';
  readonly status = 402;
}

describe.each(TARGETS)('IdempotencyStore on %s', (target) => {
  let client: TestClient;
  let admin: TestClient;
  beforeAll(async () => {
    client = await connect(target);
    admin = await adminClient(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
    await admin.close();
  });

  const newStore = (options: ConstructorParameters<typeof IdempotencyStore>[1] = {}) =>
    new IdempotencyStore(client, { prefix: uniquePrefix(), ...options });
  const recordOf = (prefix: string, key: string) =>
    admin.hGetAll(keyspace(prefix, 'idempotency', key).key('record'));

  describe('run', () => {
    it('runs the operation once and replays its result to every later call', async () => {
      const store = newStore();
      let runs = 0;
      const first = await store.run('order:1', async () => ({ id: ++runs, total: 42 }));
      const second = await store.run('order:1', async () => ({ id: ++runs, total: 0 }));
      expect(first).toEqual({ id: 1, total: 42 });
      expect(second).toEqual({ id: 1, total: 42 });
      expect(runs).toBe(1);
    });

    it('runs the operation exactly once for 20 concurrent calls in one process, and all get its result', async () => {
      const store = newStore();
      let runs = 0;
      const results = await Promise.all(
        Array.from({ length: 20 }, () =>
          store.run('order:concurrent', async () => {
            runs += 1;
            await new Promise((r) => setTimeout(r, 50));
            return `result-${runs}`;
          }),
        ),
      );
      expect(runs).toBe(1);
      expect(new Set(results)).toEqual(new Set(['result-1']));
    });

    it('keeps different keys apart', async () => {
      const store = newStore();
      expect(await store.run('a', () => 'A')).toBe('A');
      expect(await store.run('b', () => 'B')).toBe('B');
      expect(await store.run('a', () => 'not run')).toBe('A');
    });

    it('keeps keys that differ only in braces apart (and in one slot each)', async () => {
      const store = newStore();
      expect(await store.run('{x}', () => 'braced')).toBe('braced');
      expect(await store.run('x', () => 'bare')).toBe('bare');
      expect(await store.run('%7Bx%7D', () => 'escaped')).toBe('escaped');
    });

    it('wakes a waiting duplicate with the result when the first run completes (no polling)', async () => {
      // The lease is long, so the waiter's safety re-check would come far after its waitMs: only
      // the wake-up can deliver the result in time.
      const store = newStore({ leaseMs: 120_000 });
      const hold = gate<string>();
      const started = gate();
      let runs = 0;
      const first = store.run('slow', async () => {
        runs += 1;
        started.open();
        return hold.promise;
      });
      await started.promise;
      const duplicate = store.run('slow', async () => (++runs, 'duplicate ran'), { waitMs: 10_000 });
      await until(() => WakeBus.for(client).listenerCount > 0);
      hold.open('from the first run');
      expect(await first).toBe('from the first run');
      expect(await duplicate).toBe('from the first run');
      expect(runs).toBe(1);
    });

    it('wakes a waiting duplicate whose result is too large to ride in the wake-up, and it re-reads it', async () => {
      const store = newStore({ leaseMs: 120_000 });
      const big = 'x'.repeat(100_000);
      const hold = gate<string>();
      const started = gate();
      const first = store.run('big', async () => (started.open(), hold.promise));
      await started.promise;
      const duplicate = store.run('big', async () => 'duplicate ran', { waitMs: 10_000 });
      await until(() => WakeBus.for(client).listenerCount > 0);
      hold.open(big);
      await first;
      expect(await duplicate).toBe(big);
    });

    it('throws IdempotencyInProgressError at once with waitMs 0, with the time left on the claim', async () => {
      const store = newStore({ leaseMs: 60_000 });
      const hold = gate<string>();
      const started = gate();
      const first = store.run('busy', async () => (started.open(), hold.promise));
      await started.promise;
      const error = await store.run('busy', () => 'never', { waitMs: 0 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(IdempotencyInProgressError);
      expect((error as IdempotencyInProgressError).code).toBe('IDEMPOTENCY_IN_PROGRESS');
      expect((error as IdempotencyInProgressError).retryAfterMs).toBeGreaterThan(50_000);
      expect((error as IdempotencyInProgressError).retryAfterMs).toBeLessThanOrEqual(60_000);
      hold.open('done');
      await first;
    });

    it('throws IdempotencyInProgressError when waitMs runs out before the first run finishes', async () => {
      const store = newStore({ leaseMs: 60_000 });
      const hold = gate<string>();
      const started = gate();
      const first = store.run('busy', async () => (started.open(), hold.promise));
      await started.promise;
      await expect(store.run('busy', () => 'never', { waitMs: 100 })).rejects.toBeInstanceOf(IdempotencyInProgressError);
      expect(WakeBus.for(client).listenerCount).toBe(0);
      hold.open('done');
      await first;
    });

    it('stops waiting with the signal\'s reason when it aborts', async () => {
      const store = newStore({ leaseMs: 60_000 });
      const hold = gate<string>();
      const started = gate();
      const first = store.run('busy', async () => (started.open(), hold.promise));
      await started.promise;
      const controller = new AbortController();
      const waiting = store.run('busy', () => 'never', { waitMs: 30_000, signal: controller.signal });
      await until(() => WakeBus.for(client).listenerCount > 0);
      controller.abort(new Error('caller gave up'));
      await expect(waiting).rejects.toThrow('caller gave up');
      hold.open('done');
      await first;
    });

    it('renews the claim while the operation runs past leaseMs, so no duplicate runs meanwhile', async () => {
      const store = newStore({ leaseMs: 1_000 });
      const hold = gate<string>();
      const started = gate();
      let runs = 0;
      const first = store.run('long', async () => (runs++, started.open(), hold.promise));
      await started.promise;
      // Three lease lengths later the claim is still held: renewed, not lapsed.
      await new Promise((r) => setTimeout(r, 3_000));
      expect(await store.begin('long')).toMatchObject({ status: 'in_progress' });
      await expect(store.run('long', async () => (runs++, 'second'), { waitMs: 0 })).rejects.toBeInstanceOf(IdempotencyInProgressError);
      hold.open('first');
      expect(await first).toBe('first');
      expect(runs).toBe(1);
    });

    it('aborts the operation\'s signal when its claim is taken over, and refuses to store its result', async () => {
      const prefix = uniquePrefix();
      const store = new IdempotencyStore(client, { prefix, leaseMs: 300 });
      let reason: unknown;
      const run = store.run('taken', async ({ signal }) => {
        await store.set('taken', 'overwritten by set');
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        reason = signal.reason;
        return 'late result';
      });
      await expect(run).rejects.toBeInstanceOf(IdempotencyLeaseLostError);
      expect(reason).toBeInstanceOf(IdempotencyLeaseLostError);
      expect(await store.get('taken')).toBe('overwritten by set');
    });

    it('passes the claim token to the operation', async () => {
      const prefix = uniquePrefix();
      const store = new IdempotencyStore(client, { prefix });
      let seen: string | undefined;
      await store.run('tok', async ({ token }) => {
        seen = token;
        expect((await recordOf(prefix, 'tok')).token).toBe(token);
        return 1;
      });
      expect(seen).toMatch(/^[\w-]{16}\.[0-9a-z]+$/);
    });
  });

  describe('fingerprints', () => {
    it('refuses the same key with a different request, and runs nothing', async () => {
      const store = newStore();
      await store.run('charge', () => 'charged 100', { fingerprint: { amount: 100 } });
      let ran = false;
      const error = await store.run('charge', () => ((ran = true), 'charged 200'), { fingerprint: { amount: 200 } }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(IdempotencyFingerprintMismatchError);
      expect((error as IdempotencyFingerprintMismatchError).code).toBe('IDEMPOTENCY_FINGERPRINT_MISMATCH');
      expect(ran).toBe(false);
      expect(await store.get('charge')).toBe('charged 100');
    });

    it('refuses a different request while the first one is still running', async () => {
      const store = newStore({ leaseMs: 60_000 });
      const claim = await store.begin('charge', { fingerprint: { amount: 100 } });
      expect(claim.status).toBe('acquired');
      await expect(store.begin('charge', { fingerprint: { amount: 200 } })).rejects.toBeInstanceOf(IdempotencyFingerprintMismatchError);
      expect(await store.begin('charge', { fingerprint: { amount: 100 } })).toMatchObject({ status: 'in_progress' });
      await store.complete('charge', (claim as Acquired).token, 'ok');
    });

    it('replays regardless of the order of keys in the fingerprint, at any depth', async () => {
      const store = newStore();
      const a = { amount: 100, currency: 'EUR', card: { last4: '4242', exp: { m: 1, y: 30 } } };
      const b = { card: { exp: { y: 30, m: 1 }, last4: '4242' }, currency: 'EUR', amount: 100 };
      let runs = 0;
      await store.run('charge', () => ++runs, { fingerprint: a });
      expect(await store.run('charge', () => ++runs, { fingerprint: b })).toBe(1);
      expect(runs).toBe(1);
    });

    it('tells apart fingerprints that plain JSON would confuse (array order, 1n and "1", undefined and null)', async () => {
      const store = newStore();
      await store.run('f1', () => 1, { fingerprint: [1, 2] });
      await expect(store.run('f1', () => 2, { fingerprint: [2, 1] })).rejects.toBeInstanceOf(IdempotencyFingerprintMismatchError);
      await store.run('f2', () => 1, { fingerprint: { n: 1n } });
      await expect(store.run('f2', () => 2, { fingerprint: { n: '1' } })).rejects.toBeInstanceOf(IdempotencyFingerprintMismatchError);
      await store.run('f3', () => 1, { fingerprint: { v: undefined } });
      await expect(store.run('f3', () => 2, { fingerprint: { v: null } })).rejects.toBeInstanceOf(IdempotencyFingerprintMismatchError);
    });

    it('replays to a caller without a fingerprint, and checks one given to set', async () => {
      const store = newStore();
      await store.run('k', () => 'v', { fingerprint: { a: 1 } });
      expect(await store.run('k', () => 'other')).toBe('v');
      await store.set('s', 'stored', { fingerprint: { a: 1 } });
      expect(await store.run('s', () => 'other', { fingerprint: { a: 1 } })).toBe('stored');
      await expect(store.run('s', () => 'other', { fingerprint: { a: 2 } })).rejects.toBeInstanceOf(IdempotencyFingerprintMismatchError);
    });
  });

  describe('errors', () => {
    it('frees the key when the operation throws (by default), so a retry runs it again', async () => {
      const prefix = uniquePrefix();
      const store = new IdempotencyStore(client, { prefix });
      let runs = 0;
      await expect(store.run('flaky', async () => (runs++, Promise.reject(new Error('boom'))))).rejects.toThrow('boom');
      expect(await recordOf(prefix, 'flaky')).toEqual({});
      expect(await store.run('flaky', async () => (runs++, 'ok'))).toBe('ok');
      expect(runs).toBe(2);
    });

    it('caches the error with cacheErrors: true and replays it, with its name, message and code', async () => {
      const store = newStore({ cacheErrors: true });
      let runs = 0;
      const original = await store
        .run('declined', async () => {
          runs++;
          throw new CardDeclinedError('card declined');
        })
        .catch((e: unknown) => e);
      expect(original).toBeInstanceOf(CardDeclinedError);
      const replayed = await store.run('declined', async () => (runs++, 'ok')).catch((e: unknown) => e);
      expect(runs).toBe(1);
      expect(ReplayedError.isInstance(replayed)).toBe(true);
      expect(replayed).toBeInstanceOf(Error);
      expect(replayed).toMatchObject({ name: 'Error', message: 'card declined', code: 'CARD_DECLINED', status: 402 });
      expect(await store.get('declined')).toBeUndefined();
      const claim = await store.begin('declined');
      expect(claim.status).toBe('failed');
    });

    it('caches only the errors a cacheErrors predicate picks', async () => {
      const store = newStore({ cacheErrors: (e) => (e as { code?: string }).code === 'CARD_DECLINED' });
      await expect(store.run('a', () => Promise.reject(new Error('timeout')))).rejects.toThrow('timeout');
      expect(await store.run('a', () => 'retried')).toBe('retried');
      await expect(store.run('b', () => Promise.reject(new CardDeclinedError('declined')))).rejects.toThrow('declined');
      await expect(store.run('b', () => 'never')).rejects.toMatchObject({ code: 'CARD_DECLINED' });
    });

    it('lets a run override the store\'s cacheErrors', async () => {
      const caching = newStore({ cacheErrors: true });
      await expect(caching.run('a', () => Promise.reject(new Error('x')), { cacheErrors: false })).rejects.toThrow('x');
      expect(await caching.run('a', () => 'ran again')).toBe('ran again');
      const freeing = newStore();
      await expect(freeing.run('b', () => Promise.reject(new Error('y')), { cacheErrors: true })).rejects.toThrow('y');
      await expect(freeing.run('b', () => 'never')).rejects.toThrow('y');
    });

    it('wakes a waiting duplicate that then runs the operation itself when the first run\'s error frees the key', async () => {
      const store = newStore({ leaseMs: 120_000 });
      const hold = gate<void>();
      const started = gate();
      const first = store.run('retry-me', async () => {
        started.open();
        await hold.promise;
        throw new Error('first failed');
      });
      await started.promise;
      const duplicate = store.run('retry-me', async () => 'duplicate succeeded', { waitMs: 10_000 });
      await until(() => WakeBus.for(client).listenerCount > 0);
      hold.open();
      await expect(first).rejects.toThrow('first failed');
      expect(await duplicate).toBe('duplicate succeeded');
    });

    it('wakes a waiting duplicate with a cached error', async () => {
      const store = newStore({ leaseMs: 120_000, cacheErrors: true });
      const hold = gate<void>();
      const started = gate();
      const first = store.run('declined', async () => {
        started.open();
        await hold.promise;
        throw new CardDeclinedError('declined');
      });
      await started.promise;
      const duplicate = store.run('declined', async () => 'never', { waitMs: 10_000 });
      await until(() => WakeBus.for(client).listenerCount > 0);
      hold.open();
      await expect(first).rejects.toBeInstanceOf(CardDeclinedError);
      await expect(duplicate).rejects.toMatchObject({ code: 'CARD_DECLINED', message: 'declined' });
    });
  });

  describe('begin, complete, fail', () => {
    it('claims, reports in_progress to a duplicate, then completed with the result', async () => {
      const store = newStore({ leaseMs: 60_000 });
      const claim = await store.begin('k', { fingerprint: { a: 1 } });
      expect(claim).toMatchObject({ status: 'acquired' });
      const { token, expiresAt, signal } = claim as Acquired;
      expect(expiresAt).toBeGreaterThan(Date.now() - 60_000);
      expect(signal.aborted).toBe(false);
      expect(await store.begin('k')).toMatchObject({ status: 'in_progress' });
      await store.complete('k', token, { ok: true });
      expect(await store.begin('k')).toEqual({ status: 'completed', result: { ok: true } });
      // Resending the same complete (after a lost reply) is harmless.
      await store.complete('k', token, { ok: true });
    });

    it('frees the key on fail with retryable: true', async () => {
      const store = newStore();
      const claim = (await store.begin('k')) as Acquired;
      await store.fail('k', claim.token, { retryable: true });
      expect((await store.begin('k')).status).toBe('acquired');
    });

    it('caches the error on fail with retryable: false', async () => {
      const store = newStore();
      const claim = (await store.begin('k')) as Acquired;
      await store.fail('k', claim.token, { retryable: false, error: new CardDeclinedError('declined') });
      const again = await store.begin('k');
      expect(again.status).toBe('failed');
      expect(again.status === 'failed' && again.error).toMatchObject({ message: 'declined', code: 'CARD_DECLINED' });
    });

    it('refuses complete and fail with a token that is not the claim\'s', async () => {
      const store = newStore();
      const claim = (await store.begin('k')) as Acquired;
      await expect(store.complete('k', 'not-the-token', 'x')).rejects.toBeInstanceOf(IdempotencyLeaseLostError);
      await expect(store.fail('k', 'not-the-token', { retryable: false })).rejects.toBeInstanceOf(IdempotencyLeaseLostError);
      await store.complete('k', claim.token, 'mine');
      expect(await store.get('k')).toBe('mine');
    });

    it('refuses the complete of a claim whose lease ran out and was taken over; the new owner\'s result stands', async () => {
      const store = newStore({ leaseMs: 150 });
      const old = (await store.begin('k', { keepAlive: false })) as Acquired;
      await until(() => old.signal.aborted);
      let taken: Acquired | undefined;
      await until(async () => {
        const c = await store.begin('k');
        if (c.status === 'acquired') taken = c;
        return taken !== undefined;
      });
      await expect(store.complete('k', old.token, 'stale')).rejects.toBeInstanceOf(IdempotencyLeaseLostError);
      await store.complete('k', taken!.token, 'fresh');
      expect(await store.get('k')).toBe('fresh');
    });

    it('accepts a late complete when the lease ran out but nobody claimed the key', async () => {
      const store = newStore({ leaseMs: 150 });
      const claim = (await store.begin('k', { keepAlive: false })) as Acquired;
      await until(() => claim.signal.aborted);
      await new Promise((r) => setTimeout(r, 200));
      await store.complete('k', claim.token, 'late but unopposed');
      expect(await store.get('k')).toBe('late but unopposed');
    });

    it('aborts the claim\'s signal with IdempotencyLeaseLostError when keepAlive is false and the lease runs out', async () => {
      const store = newStore({ leaseMs: 150 });
      const claim = (await store.begin('k', { keepAlive: false })) as Acquired;
      await until(() => claim.signal.aborted);
      expect(claim.signal.reason).toBeInstanceOf(IdempotencyLeaseLostError);
    });
  });

  describe('get and set', () => {
    it('returns undefined for a key never run, and for one still running', async () => {
      const store = newStore();
      expect(await store.get('nothing')).toBeUndefined();
      const claim = (await store.begin('running')) as Acquired;
      expect(await store.get('running')).toBeUndefined();
      await store.complete('running', claim.token, 7);
      expect(await store.get('running')).toBe(7);
    });

    it('writes with set the record that run replays', async () => {
      const store = newStore();
      await store.set('order:9', { id: 9 });
      expect(await store.get('order:9')).toEqual({ id: 9 });
      expect(await store.run('order:9', () => ({ id: -1 }))).toEqual({ id: 9 });
    });

    it('expires a stored result after ttlMs (the retention), after which the key runs again', async () => {
      const prefix = uniquePrefix();
      const store = new IdempotencyStore(client, { prefix, ttlMs: 100 });
      await store.run('short', () => 'first');
      expect(await store.get('short')).toBe('first');
      await until(async () => (await store.get('short')) === undefined);
      expect(await store.run('short', () => 'second')).toBe('second');
    });

    it('wakes a waiting duplicate when set stores the result', async () => {
      const store = newStore({ leaseMs: 120_000 });
      const claim = (await store.begin('k')) as Acquired;
      const waiting = store.run('k', () => 'never', { waitMs: 10_000 });
      await until(() => WakeBus.for(client).listenerCount > 0);
      await store.set('k', 'set by an operator');
      expect(await waiting).toBe('set by an operator');
      await expect(store.complete('k', claim.token, 'late')).rejects.toBeInstanceOf(IdempotencyLeaseLostError);
    });
  });
});
