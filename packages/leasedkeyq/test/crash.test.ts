import { WakeBus } from '@x/redis-core';
import { TARGETS, spawnWorker, uniquePrefix, type Worker } from '@x/testing';
import { LeasedKeyQueue } from '../src';
import { connect, sleep, type TestClient } from './support';

const PROCESSES = 4;
const CONSUMERS = 5;
const ITEMS = 10_000;
const UPDATES = 2_000;
const LEASE_MS = 2_000;

type Report = { k: string; v: number } | { held: string; v: number } | { done: true };

describe.each(TARGETS)('LeasedKeyQueue with consumer processes on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  it(
    `acks each of ${ITEMS} items exactly once and loses no update while ${PROCESSES}x${CONSUMERS} consumers drain them and one process is SIGKILLed`,
    async () => {
      const prefix = uniquePrefix();
      const name = 'crash';
      const q = new LeasedKeyQueue<{ v: number }>(client, name, { prefix, defaultLeaseTimeoutMs: LEASE_MS });
      const env = {
        LKQ_TARGET: target,
        LKQ_PREFIX: prefix,
        LKQ_NAME: name,
        LKQ_LEASE_MS: String(LEASE_MS),
        LKQ_CONSUMERS: String(CONSUMERS),
        LKQ_FREEZE_AFTER: '300',
      };
      const file = require.resolve('./fixtures/consumer.cjs');
      const victim = spawnWorker(file, { env, crashAt: 'frozen' });
      const survivors: Worker[] = [];
      for (let i = 1; i < PROCESSES; i++) survivors.push(spawnWorker(file, { env }));
      const workers = [victim, ...survivors];
      try {
        await Promise.all(workers.map((w) => w.reached('ready')));

        // Producers: every key once, and updates of random keys in whatever state they are in
        // (available: replaced; in flight: updated; acked: put again as a new item).
        const last = new Map<string, number>();
        const put = async (key: string) => {
          const v = (last.get(key) ?? 0) + 1;
          last.set(key, v);
          await q.put(key, { v });
        };
        let nextKey = 0;
        let updates = 0;
        const producer = async () => {
          while (nextKey < ITEMS || updates < UPDATES) {
            if (nextKey < ITEMS && (updates >= UPDATES || Math.random() < 0.8)) {
              await put(`k${nextKey++}`);
            } else if (nextKey > 0) {
              updates += 1;
              await put(`k${Math.floor(Math.random() * nextKey)}`);
            }
          }
        };
        const killing = victim.reached('frozen', 120_000).then(() => victim.kill());
        await Promise.all([...Array.from({ length: 8 }, producer), killing]);

        // Drained: nothing available, nothing in flight (the victim's leases expired and went to others).
        const until = Date.now() + 120_000;
        while ((await q.size()) + (await q.inflightSize()) > 0) {
          if (Date.now() > until) throw new Error('the queue did not drain');
          await sleep(200);
        }
        for (const w of survivors) w.child.kill('SIGTERM');
        for (const w of survivors) expect(await w.exited()).toBe(0);

        const acked = new Map<string, number>();
        const latestBySurvivors = new Map<string, number>();
        const held: Array<{ held: string; v: number }> = [];
        for (const w of workers) {
          for (const r of w.reports as Report[]) {
            if ('k' in r) acked.set(`${r.k}@${r.v}`, (acked.get(`${r.k}@${r.v}`) ?? 0) + 1);
            if ('k' in r && w !== victim) latestBySurvivors.set(r.k, Math.max(r.v, latestBySurvivors.get(r.k) ?? 0));
            if ('held' in r) held.push(r);
          }
        }
        // Every item version acked at most once...
        const twice = [...acked].filter(([, n]) => n > 1);
        expect(twice).toEqual([]);
        // ...every key's latest value acked (no update lost), and every key acked.
        const missing = [...last].filter(([key, v]) => !acked.has(`${key}@${v}`));
        expect(missing).toEqual([]);
        expect(last.size).toBe(ITEMS);
        // The victim did work, and the items it held when killed (their leases ran out on the
        // server) were acked by the others, at the version it held or a later one.
        expect(victim.reports.some((r) => 'k' in (r as object))).toBe(true);
        expect(held.length).toBeGreaterThan(0);
        for (const h of held) expect(latestBySurvivors.get(h.held) ?? 0).toBeGreaterThanOrEqual(h.v);
        for (const w of survivors) expect(w.reports.some((r) => 'k' in (r as object))).toBe(true);
      } finally {
        for (const w of workers) await w.kill();
      }
    },
    180_000,
  );
});
