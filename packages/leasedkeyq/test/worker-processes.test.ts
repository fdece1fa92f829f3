import { WakeBus } from '@x/redis-core';
import { TARGETS, spawnWorker, uniquePrefix, until, type Worker } from '@x/testing';
import { LeasedKeyQueue } from '../src';
import { connect, type TestClient } from './support';

type Report = { start: string; deliveries: number } | { done: string; deliveries: number } | { running: number } | { error: string } | { stopped: true };

const LEASE_MS = 1_000;
const file = require.resolve('./fixtures/worker.cjs');

describe.each(TARGETS)('LeasedKeyQueue.process in worker processes on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  const envFor = (prefix: string, name: string, extra: Record<string, string> = {}) => ({
    LKQ_TARGET: target,
    LKQ_PREFIX: prefix,
    LKQ_NAME: name,
    LKQ_LEASE_MS: String(LEASE_MS),
    ...extra,
  });

  it(
    'redelivers the item of a worker SIGKILLed mid-item with its delivery count + 1, and it is processed exactly once more',
    async () => {
      const prefix = uniquePrefix();
      const name = 'crash';
      const q = new LeasedKeyQueue<number>(client, name, { prefix, defaultLeaseTimeoutMs: LEASE_MS });
      const victim = spawnWorker(file, { env: envFor(prefix, name, { LKQ_VICTIM: 'victim' }), crashAt: 'mid-item' });
      let survivor: Worker | undefined;
      try {
        await victim.reached('ready');
        await q.put('victim', 1);
        await victim.reached('mid-item');
        // The victim's lease keeper renews the lease while it hangs: the item stays in flight.
        await new Promise((r) => setTimeout(r, LEASE_MS * 1.5));
        expect(await q.inflightKeys()).toEqual(['victim']);
        await victim.kill();

        survivor = spawnWorker(file, { env: envFor(prefix, name) });
        await survivor.reached('ready');
        const s = survivor;
        await until(() => s.reports.some((r) => 'done' in (r as object)), 30_000);
        await until(async () => (await q.size()) + (await q.inflightSize()) === 0, 30_000);
        survivor.child.kill('SIGTERM');
        expect(await survivor.exited()).toBe(0);

        expect(victim.reports).toEqual([{ start: 'victim', deliveries: 1 }]);
        const work = (survivor.reports as Report[]).filter((r) => 'start' in r || 'done' in r);
        expect(work).toEqual([
          { start: 'victim', deliveries: 2 },
          { done: 'victim', deliveries: 2 },
        ]);
        expect(await q.deadLetterSize()).toBe(0);
      } finally {
        await victim.kill();
        await survivor?.kill();
      }
    },
    90_000,
  );

  it(
    'never runs more handlers than maxInFlight across 3 processes, and handles every item exactly once',
    async () => {
      const prefix = uniquePrefix();
      const name = 'global';
      const MAX = 5;
      const ITEMS = 90;
      const q = new LeasedKeyQueue<number>(client, name, { prefix });
      const env = envFor(prefix, name, { LKQ_MAX_IN_FLIGHT: String(MAX), LKQ_CONCURRENCY: '4', LKQ_METER: 'meter', LKQ_WORK_MS: '10' });
      const workers = [0, 1, 2].map(() => spawnWorker(file, { env }));
      try {
        await Promise.all(workers.map((w) => w.reached('ready')));
        for (let i = 0; i < ITEMS; i++) await q.put(`k${i}`, i);
        const done = () => workers.flatMap((w) => (w.reports as Report[]).filter((r) => 'done' in r));
        await until(() => done().length >= ITEMS, 60_000);
        for (const w of workers) w.child.kill('SIGTERM');
        for (const w of workers) expect(await w.exited()).toBe(0);

        const reports = workers.flatMap((w) => w.reports as Report[]);
        const handled = reports.flatMap((r) => ('done' in r ? [r.done] : []));
        expect(handled.sort()).toEqual(Array.from({ length: ITEMS }, (_, i) => `k${i}`).sort());
        const running = reports.flatMap((r) => ('running' in r ? [r.running] : []));
        expect(running.length).toBe(ITEMS);
        expect(Math.max(...running)).toBeLessThanOrEqual(MAX);
        expect(reports.filter((r) => 'error' in r)).toEqual([]);
        // More than one process did work.
        expect(workers.filter((w) => (w.reports as Report[]).some((r) => 'done' in r)).length).toBeGreaterThan(1);
        expect([await q.size(), await q.inflightSize()]).toEqual([0, 0]);
      } finally {
        for (const w of workers) await w.kill();
      }
    },
    90_000,
  );
});
