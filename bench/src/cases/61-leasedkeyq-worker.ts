import { WakeBus } from '@x/redis-core';
import { LeasedKeyQueue } from '@x/leasedkeyq';
import { Queue, Worker } from 'bullmq';
import type { BenchCase, BenchClient, BenchContext, Result } from '../harness';

const ITEMS = Number(process.env.LKQ_BENCH_WORKER_ITEMS ?? 5_000);
const CONCURRENCY = [1, 16, 64];
const NOTE = 'p50/p99 = gap between two items done';

/** Runs `start` (which must call `done()` once per item) and builds a result from the item gaps. */
async function drain(ctx: BenchContext, label: string, start: (done: () => void) => Promise<() => Promise<void>>, baseline = false): Promise<Result> {
  const gaps: number[] = [];
  let last = 0;
  let count = 0;
  let finish!: () => void;
  const all = new Promise<void>((resolve) => (finish = resolve));
  const began = performance.now();
  last = began;
  const stop = await start(() => {
    const now = performance.now();
    gaps.push(now - last);
    last = now;
    count += 1;
    if (count === ITEMS) finish();
  });
  await all;
  const elapsedMs = performance.now() - began;
  await stop();
  return ctx.record(label, gaps, { elapsedMs, baseline, note: NOTE });
}

async function fillList(client: BenchClient, key: string): Promise<void> {
  for (let i = 0; i < ITEMS; i += 1_000) {
    await client.lPush(key, Array.from({ length: Math.min(1_000, ITEMS - i) }, (_, j) => `v${i + j}`));
  }
}

async function fillQueue(q: LeasedKeyQueue<{ i: number }>, run: number): Promise<void> {
  for (let i = 0; i < ITEMS; i += 256) {
    await Promise.all(Array.from({ length: Math.min(256, ITEMS - i) }, (_, j) => q.put(`r${run}-${i + j}`, { i: i + j })));
  }
}

/**
 * Worker throughput: ITEMS queued, then drained by a worker of concurrency 1, 16 and 64 running a
 * handler that does nothing. Beside it in the same run: a raw node-redis RPOP drain of a list with
 * as many chains (the least a queue can do: one command per item, no lease, no ack) and BullMQ's
 * `Worker` on the same server (ioredis).
 */
const benchCase: BenchCase = {
  name: '@x/leasedkeyq worker: items/s at concurrency 1/16/64',
  async run(ctx) {
    const client = await ctx.client();
    const results: Result[] = [];
    const prefix = `benchw${Date.now().toString(36)}`;
    const url = new URL(ctx.url);
    const connection = { host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null };
    let run = 0;
    try {
      for (const concurrency of CONCURRENCY) {
        const scenario = `@x/leasedkeyq worker, ${ITEMS.toLocaleString('en-US')} items, concurrency ${concurrency}`;
        const rows: Result[] = [];
        const list = `bench:raw:drain:${concurrency}`;
        await fillList(client, list);
        rows.push(
          await drain(
            ctx,
            `raw node-redis RPOP drain, ${concurrency} in flight`,
            async (done) => {
              const chains = Array.from({ length: concurrency }, async () => {
                while ((await client.rPop(list)) !== null) done();
              });
              return async () => void (await Promise.all(chains));
            },
            true,
          ),
        );

        run += 1;
        const q = new LeasedKeyQueue<{ i: number }>(client, `worker-${concurrency}`, { prefix });
        await fillQueue(q, run);
        rows.push(
          await drain(ctx, `@x/leasedkeyq process(), concurrency ${concurrency}`, async (done) => {
            const worker = q.process(() => done(), { concurrency });
            return () => worker.stop();
          }),
        );
        rows[rows.length - 1]!.note = `${NOTE}; 2 scripts per item (get, ack)`;

        const bull = new Queue(`${prefix}-bull-${concurrency}`, { connection });
        for (let i = 0; i < ITEMS; i += 1_000) {
          await bull.addBulk(
            Array.from({ length: Math.min(1_000, ITEMS - i) }, (_, j) => ({ name: 'job', data: { i: i + j }, opts: { removeOnComplete: true } })),
          );
        }
        rows.push(
          await drain(ctx, `BullMQ Worker, concurrency ${concurrency}`, async (done) => {
            const worker = new Worker(`${prefix}-bull-${concurrency}`, async () => done(), { connection, concurrency });
            worker.on('error', () => undefined);
            return async () => {
              await worker.close();
            };
          }),
        );
        await bull.obliterate({ force: true });
        await bull.close();
        for (const r of rows) r.case = scenario;
        results.push(...rows);
        await q.close();
      }
    } finally {
      await WakeBus.close(client);
    }
    return results;
  },
};
export default benchCase;
