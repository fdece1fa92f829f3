import { WakeBus } from '@x/redis-core';
import { LeasedKeyQueue } from '@x/leasedkeyq';
import { Queue, Worker } from 'bullmq';
import type { BenchCase, BenchContext, Result } from '../harness';

const ITEMS = Number(process.env.LKQ_BENCH_WORKER_ITEMS ?? 5_000);
const COUNTED = 500;
const CONCURRENCY = [1, 16, 64];
const NOTE = 'p50/p99 = gap between two items done';

/** One way to drain a queue: fill it with `n` items, then run consumers that call `done()` per item. */
interface Drainer {
  fill(n: number): Promise<void>;
  start(done: () => void): Promise<() => Promise<void>>;
}

async function once(d: Drainer, n: number, filled?: () => Promise<unknown>): Promise<{ gaps: number[]; elapsedMs: number }> {
  await d.fill(n);
  await filled?.();
  const gaps: number[] = [];
  let count = 0;
  let finish!: () => void;
  const all = new Promise<void>((resolve) => (finish = resolve));
  const began = performance.now();
  let last = began;
  const stop = await d.start(() => {
    const now = performance.now();
    gaps.push(now - last);
    last = now;
    count += 1;
    if (count === n) finish();
  });
  await all;
  const elapsedMs = performance.now() - began;
  await stop();
  return { gaps, elapsedMs };
}

/** Times a drain of ITEMS, then counts the commands sent for a drain of COUNTED (MONITOR, untimed). */
async function drain(ctx: BenchContext, label: string, d: Drainer, baseline = false, note = NOTE): Promise<Result> {
  const { gaps, elapsedMs } = await once(d, ITEMS);
  const result = ctx.record(label, gaps, { elapsedMs, baseline, note });
  // Counting starts once the items are queued: the fill is not the consumer's cost.
  await once(d, COUNTED, () => ctx.commands());
  result.roundTripsPerOp = (await ctx.commands()) / COUNTED;
  return result;
}

/**
 * Worker throughput: ITEMS queued, then drained by a worker of concurrency 1, 16 and 64 running a
 * handler that does nothing. Beside it in the same run: a raw node-redis RPOP drain of a list with
 * as many chains (the least a queue can do: one command per item, no lease, no ack) and BullMQ's
 * `Worker` on the same server (ioredis). RT/op counts every command sent (a worker's setup, its
 * wake-up subscriptions and its stop included) over a drain of COUNTED items.
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
        let pushed = 0;
        rows.push(
          await drain(
            ctx,
            `raw node-redis RPOP drain, ${concurrency} in flight`,
            {
              fill: async (n) => {
                for (let i = 0; i < n; i += 1_000) {
                  await client.lPush(list, Array.from({ length: Math.min(1_000, n - i) }, () => `v${pushed++}`));
                }
              },
              start: async (done) => {
                const chains = Array.from({ length: concurrency }, async () => {
                  while ((await client.rPop(list)) !== null) done();
                });
                return async () => void (await Promise.all(chains));
              },
            },
            true,
          ),
        );

        const q = new LeasedKeyQueue<{ i: number }>(client, `worker-${concurrency}`, { prefix });
        rows.push(
          await drain(
            ctx,
            `@x/leasedkeyq process(), concurrency ${concurrency}`,
            {
              fill: async (n) => {
                run += 1;
                for (let i = 0; i < n; i += 256) {
                  await Promise.all(Array.from({ length: Math.min(256, n - i) }, (_, j) => q.put(`r${run}-${i + j}`, { i: i + j })));
                }
              },
              start: async (done) => {
                const worker = q.process(() => done(), { concurrency });
                return () => worker.stop();
              },
            },
            false,
            `${NOTE}; one ack-and-get script per item`,
          ),
        );
        await q.close();

        const bullName = `${prefix}-bull-${concurrency}`;
        const bull = new Queue(bullName, { connection });
        rows.push(
          await drain(ctx, `BullMQ Worker, concurrency ${concurrency}`, {
            fill: async (n) => {
              for (let i = 0; i < n; i += 1_000) {
                await bull.addBulk(
                  Array.from({ length: Math.min(1_000, n - i) }, (_, j) => ({ name: 'job', data: { i: i + j }, opts: { removeOnComplete: true } })),
                );
              }
            },
            start: async (done) => {
              const worker = new Worker(bullName, async () => done(), { connection, concurrency });
              worker.on('error', () => undefined);
              return async () => {
                await worker.close();
              };
            },
          }),
        );
        await bull.obliterate({ force: true });
        await bull.close();
        for (const r of rows) r.case = scenario;
        results.push(...rows);
      }
    } finally {
      await WakeBus.close(client);
    }
    return results;
  },
};
export default benchCase;
