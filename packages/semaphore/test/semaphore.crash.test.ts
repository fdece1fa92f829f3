import { TARGETS, connect, spawnWorker, uniquePrefix, type TestClient } from '@x/testing';
import { WakeBus } from '@x/redis-core';
import { Semaphore } from '../src';

// Real processes, killed with SIGKILL or run side by side. The fixture uses the built package:
// run `pnpm build` first.
const fixture = require.resolve('./fixtures/worker.cjs');

describe.each(TARGETS)('Semaphore across processes on %s', (target) => {
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
  const create = (name: string, limit: number, extra: { leaseTtlMs?: number } = {}) => Semaphore.create(client, name, { limit, prefix, ...extra });

  describe('crashes', () => {
    it('gives the permits of a holder killed with SIGKILL to the head waiter within leaseTtlMs', async () => {
      const leaseTtlMs = 1_000;
      const pool = await create('crash', 3, { leaseTtlMs });
      const worker = spawnWorker(fixture, { args: [target, prefix, 'crash', 'hold', '2', String(leaseTtlMs)], crashAt: 'holding' });
      await worker.reached('holding');
      const dead = worker.reports[0] as { fence: number; token: string };
      await worker.kill();
      expect((await pool.holders()).map((h) => h.token)).toEqual([dead.token]);
      const next = await pool.acquire({ permits: 3, timeoutMs: leaseTtlMs * 10 });
      expect(next.fence).toBeGreaterThan(dead.fence);
      expect((await pool.holders()).map((h) => h.token)).toEqual([next.token]);
      await next.release();
    });

    it('lets exactly the one of 21 processes that calls create with another limit fail', async () => {
      // Every worker waits (subscribed) for a gate semaphore to be created: creating it wakes them all at once.
      const workers = Array.from({ length: 21 }, (_, i) =>
        spawnWorker(fixture, { args: [target, prefix, 'contested', 'create', i === 13 ? '9' : '4', 'gate'] }),
      );
      await Promise.all(workers.map((w) => w.reached('ready', 60_000)));
      await create('gate', 1);
      await Promise.all(workers.map((w) => w.exited()));
      const outcomes = workers.map((w) => w.reports[0] as { ok: boolean; code?: string });
      const failed = outcomes.flatMap((o, i) => (o.ok ? [] : [[i, o.code]]));
      // Whoever came first set the limit: 4 when it was one of the 20, else 9.
      const limit = await (await Semaphore.attach(client, 'contested', { prefix })).getLimit();
      if (limit === 4) expect(failed).toEqual([[13, 'SEMAPHORE_LIMIT_MISMATCH']]);
      else expect(failed.map(([i]) => i)).toEqual([...Array(21).keys()].filter((i) => i !== 13));
    }, 90_000);

    it('never grants more permits than the limit to 50 workers contending from 4 processes', async () => {
      const limit = 4;
      await create('many', limit);
      const workers = [13, 13, 12, 12].map((n) => spawnWorker(fixture, { args: [target, prefix, 'many', 'contend', String(n), '8', String(limit)] }));
      const codes = await Promise.all(workers.map((w) => w.exited()));
      expect(codes).toEqual([0, 0, 0, 0]);
      const reports = workers.map((w) => w.reports[0] as { maxSeen: number; fences: number[] });
      const fences = reports.flatMap((r) => r.fences);
      expect(fences).toHaveLength(50 * 8);
      expect(new Set(fences).size).toBe(50 * 8);
      const maxSeen = Math.max(...reports.map((r) => r.maxSeen));
      expect(maxSeen).toBeLessThanOrEqual(limit);
      expect(maxSeen).toBeGreaterThan(1);
      expect(await (await Semaphore.attach(client, 'many', { prefix })).available()).toBe(limit);
    }, 90_000);
  });

});
