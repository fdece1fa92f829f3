import fc from 'fast-check';
import { TARGETS, connect, uniquePrefix, type TestClient, until } from '@x/testing';
import { GrantQueue, WakeBus, keyspace } from '@x/redis-core';
import { InvalidArgumentError, Semaphore, type Permit } from '../src';

type Step =
  | { kind: 'try'; permits: number }
  | { kind: 'acquire'; permits: number }
  | { kind: 'release'; index: number }
  | { kind: 'cancel'; index: number }
  | { kind: 'setLimit'; limit: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('try' as const), permits: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant('acquire' as const), permits: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant('release' as const), index: fc.nat(20) }),
  fc.record({ kind: fc.constant('cancel' as const), index: fc.nat(20) }),
  fc.record({ kind: fc.constant('setLimit' as const), limit: fc.integer({ min: 1, max: 5 }) }),
);

interface Waiting {
  permits: number;
  outcome: Promise<{ ok: true; permit: Permit } | { ok: false; error: unknown }>;
  controller: AbortController;
}

describe.each(TARGETS)('Semaphore against an in-memory model on %s', (target) => {
  let client: TestClient;
  let other: TestClient;
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

  it('matches a FIFO weighted-permit model: grants, hand-offs, cancels and resizes, never above the limit', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 5 }), fc.array(step, { minLength: 1, maxLength: 14 }), async (initial, steps) => {
        const prefix = uniquePrefix();
        const pools = [await Semaphore.create(client, 'm', { limit: initial, prefix }), await Semaphore.create(other, 'm', { limit: initial, prefix })];
        const queue = new GrantQueue(client, keyspace(prefix, 'semaphore', 'm'), { limit: null, notHeld: (d) => new Error(d), timeout: () => new Error('t') });
        // The model: the limit, the permits held (with their real handles), the FIFO queue.
        let limit = initial;
        const held: Permit[] = [];
        const waiting: Waiting[] = [];
        const used = () => held.reduce((sum, p) => sum + p.permits, 0);
        const promote = async (): Promise<void> => {
          while (waiting[0] && used() + waiting[0].permits <= limit) {
            const head = waiting.shift()!;
            const outcome = await head.outcome;
            expect(outcome.ok).toBe(true);
            held.push((outcome as { permit: Permit }).permit);
          }
        };
        try {
          for (const [n, s] of steps.entries()) {
            const pool = pools[n % 2]!;
            if (s.kind === 'try' || s.kind === 'acquire') {
              if (s.permits > limit) {
                const call = s.kind === 'try' ? pool.tryAcquire({ permits: s.permits }) : pool.acquire({ permits: s.permits });
                await expect(call).rejects.toBeInstanceOf(InvalidArgumentError);
              } else if (s.kind === 'try') {
                const permit = await pool.tryAcquire({ permits: s.permits });
                expect(permit !== null).toBe(waiting.length === 0 && used() + s.permits <= limit);
                if (permit) held.push(permit);
              } else if (waiting.length === 0 && used() + s.permits <= limit) {
                held.push(await pool.acquire({ permits: s.permits }));
              } else {
                const controller = new AbortController();
                const outcome = pool.acquire({ permits: s.permits, signal: controller.signal }).then(
                  (permit) => ({ ok: true as const, permit }),
                  (error: unknown) => ({ ok: false as const, error }),
                );
                waiting.push({ permits: s.permits, outcome, controller });
                await until(async () => (await queue.inspect()).waiters === waiting.length);
              }
            } else if (s.kind === 'release') {
              if (held.length === 0) continue;
              const [permit] = held.splice(s.index % held.length, 1);
              await permit!.release();
              await promote();
            } else if (s.kind === 'cancel') {
              if (waiting.length === 0) continue;
              const [w] = waiting.splice(s.index % waiting.length, 1);
              w!.controller.abort(new Error('cancelled'));
              const outcome = await w!.outcome;
              expect(outcome.ok).toBe(false);
              await promote();
            } else {
              expect(await pool.setLimit(s.limit)).toBe(limit);
              limit = s.limit;
              // Requests that can never fit any more are refused; the others keep their places.
              for (const w of waiting.filter((x) => x.permits > limit)) {
                const outcome = await w.outcome;
                expect(outcome.ok).toBe(false);
                expect((outcome as { error: unknown }).error).toBeInstanceOf(InvalidArgumentError);
              }
              waiting.splice(0, waiting.length, ...waiting.filter((x) => x.permits <= limit));
              await promote();
            }
            const state = await queue.inspect();
            expect(state.limit).toBe(limit);
            expect(state.waiters).toBe(waiting.length);
            expect(state.holders.map((h) => h.token).sort()).toEqual(held.map((p) => p.token).sort());
            expect(await pool.available()).toBe(Math.max(0, limit - used()));
          }
        } finally {
          for (const w of waiting) w.controller.abort(new Error('done'));
          await Promise.all(waiting.map((w) => w.outcome));
          await Promise.all(held.map((p) => p.release().catch(() => undefined)));
          await pools[0]!.destroy();
          await pools[1]!.close();
        }
      }),
      { numRuns: 25 },
    );
  }, 120_000);
});
