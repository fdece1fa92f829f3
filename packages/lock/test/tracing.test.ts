import { TARGETS, connect, recordChannels, uniquePrefix, until, type TestClient } from '@x/testing';
import { WakeBus } from '@x/redis-core';
import { Lock } from '../src';

const OPERATIONS = ['acquire', 'tryAcquire', 'release', 'extend'].map((op) => `x:lock:${op}`);
const EVENTS = ['x:lock:lease-lost', 'x:lock:hand-off'];

describe.each(TARGETS)('Lock tracing channels on %s', (target) => {
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

  it('publishes each operation with its resource, outcome, fence and wait, and the hand-off', async () => {
    const rec = recordChannels({ operations: OPERATIONS, events: EVENTS });
    try {
      const lock = new Lock(client, 'orders', { prefix });
      const first = (await lock.tryAcquire())!;
      expect(await lock.tryAcquire()).toBeNull();
      const waiting = lock.acquire({ timeoutMs: 10_000 });
      await until(async () => (await lock.inspect()).waiters === 1);
      await first.extend();
      await first.release();
      const second = await waiting;
      await expect(lock.acquire({ timeoutMs: 50 })).rejects.toMatchObject({ code: 'LOCK_TIMEOUT' });
      await second.release();

      // The waiter is woken inside the release script, so its acquire may end before the release's reply.
      const seen = rec.ended.map(({ channel, context: c }) => [channel, c.resource, c.outcome, c.fence]);
      expect(seen).toHaveLength(7);
      expect(seen).toEqual(expect.arrayContaining([
        ['x:lock:tryAcquire', 'orders', 'granted', first.fence],
        ['x:lock:tryAcquire', 'orders', 'refused', undefined],
        ['x:lock:extend', 'orders', 'ok', first.fence],
        ['x:lock:release', 'orders', 'ok', first.fence],
        ['x:lock:acquire', 'orders', 'waited', second.fence],
        ['x:lock:acquire', 'orders', 'timed-out', undefined],
        ['x:lock:release', 'orders', 'ok', second.fence],
      ]));
      const contexts = rec.ended.map((r) => r.context);
      const [release, lastRelease] = contexts.filter((c) => c.operation === 'release');
      const waited = contexts.find((c) => c.outcome === 'waited');
      const timedOut = contexts.find((c) => c.outcome === 'timed-out');
      expect(release).toMatchObject({ package: 'lock', operation: 'release', script: 'grant-queue.release', handedOff: 1 });
      expect(lastRelease!.handedOff).toBe(0);
      expect(waited!.waitMs).toBeGreaterThan(0);
      expect(waited!.waitMs).toBe(waited!.durationMs);
      expect(timedOut!.error).toMatchObject({ code: 'LOCK_TIMEOUT' });
      expect(rec.events.map((e) => e.context)).toEqual([{ package: 'lock', event: 'hand-off', resource: 'orders', fence: first.fence, handedOff: 1 }]);
    } finally {
      rec.stop();
    }
  });

  it('publishes lease-lost once when a lease runs out, and a release of it as refused', async () => {
    const rec = recordChannels({ operations: OPERATIONS, events: EVENTS });
    try {
      const held = (await new Lock(client, 'short', { prefix, ttlMs: 150, autoExtend: false }).tryAcquire())!;
      // (The holder's signal aborts before the server lets the lease go; the release then finds it gone.)
      const lock = new Lock(client, 'short', { prefix });
      await until(() => held.signal.aborted);
      await until(async () => !(await lock.isLocked()));
      await expect(held.release()).rejects.toMatchObject({ code: 'LOCK_NOT_HELD' });
      expect(rec.events.map((e) => [e.channel, e.context.resource, e.context.fence])).toEqual([['x:lock:lease-lost', 'short', held.fence]]);
      expect(rec.ended.map((r) => [r.channel, r.context.outcome])).toEqual([
        ['x:lock:tryAcquire', 'granted'],
        ['x:lock:release', 'refused'],
      ]);
    } finally {
      rec.stop();
    }
  });
});
