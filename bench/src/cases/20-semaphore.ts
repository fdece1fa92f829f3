import { WakeBus } from '@x/redis-core';
import { Semaphore } from '@x/semaphore';
import IORedis from 'ioredis';
import { Semaphore as RedisSemaphore } from 'redis-semaphore';
import type { BenchCase, BenchContext, Result } from '../harness';
import { handOff, type Contender } from '../hand-off';

const LIMIT = 5;
const WORKERS = 20;

const benchCase: BenchCase = {
  name: '@x/semaphore: uncontended acquire+release, and 5-permit/20-worker hand-off',
  async run(ctx) {
    const client = await ctx.client();
    const io = new IORedis(ctx.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
    const blocking: Array<Awaited<ReturnType<BenchContext['client']>>> = [];
    const results: Result[] = [];
    try {
      results.push(
        await ctx.measure(
          'raw node-redis INCR + DECR (a counter, no lease)',
          async () => {
            await client.incr('bench:raw:sem');
            await client.decr('bench:raw:sem');
          },
          { iterations: 3_000, baseline: true },
        ),
      );
      const pool = await Semaphore.create(client, 'uncontended', { limit: LIMIT, prefix: 'bench' });
      results.push(
        await ctx.measure('@x/semaphore acquire+release', async () => {
          const permit = await pool.acquire();
          await permit.release();
        }, { iterations: 3_000 }),
      );
      results.push(
        await ctx.measure('@x/semaphore tryAcquire+release', async () => {
          const permit = await pool.tryAcquire();
          await permit!.release();
        }, { iterations: 3_000 }),
      );
      const peer = new RedisSemaphore(io, 'bench:peer:uncontended', LIMIT);
      results.push(
        await ctx.measure('redis-semaphore Semaphore acquire+release (defaults)', async () => {
          await peer.acquire();
          await peer.release();
        }, { iterations: 3_000 }),
      );

      // Hand-off: a raw token list with BLPOP (redsync's design: one blocked connection per
      // waiter), ours (push hand-off, one subscriber per process), redis-semaphore (polls).
      await client.del('bench:raw:tokens');
      await client.rPush('bench:raw:tokens', Array.from({ length: LIMIT }, (_, i) => `t${i}`));
      for (let i = 0; i < WORKERS; i++) blocking.push(await ctx.client());
      const raw: Contender[] = blocking.map((conn) => ({
        async acquire() {
          const popped = await conn.blPop('bench:raw:tokens', 0);
          return async () => void (await client.rPush('bench:raw:tokens', popped!.element));
        },
      }));
      const contended = await Semaphore.create(client, 'contended', { limit: LIMIT, prefix: 'bench' });
      const ours: Contender[] = Array.from({ length: WORKERS }, () => ({
        acquire: async () => {
          const permit = await contended.acquire();
          return () => permit.release();
        },
      }));
      const peers: Contender[] = Array.from({ length: WORKERS }, () => {
        const s = new RedisSemaphore(io, 'bench:peer:contended', LIMIT, { acquireTimeout: 600_000 });
        return { acquire: async () => { await s.acquire(); return () => s.release(); } };
      });
      const handOffs: Result[] = [];
      handOffs.push(await handOff(ctx, 'raw BLPOP/RPUSH token list (20 blocked connections)', raw, 3_000, { permits: LIMIT, baseline: true }));
      handOffs.push(await handOff(ctx, '@x/semaphore acquire (push hand-off, 1 subscriber)', ours, 3_000, { permits: LIMIT }));
      handOffs.push(await handOff(ctx, 'redis-semaphore Semaphore (polls every 10 ms)', peers, 600, { permits: LIMIT }));
      for (const r of handOffs) r.case = '@x/semaphore: 5 permits, 20 workers (latency = release → next grant; ops/s = grants/s; RT/op per grant)';
      await pool.destroy();
      await contended.destroy();
      return [...results, ...handOffs];
    } finally {
      await WakeBus.close(client);
      io.disconnect();
    }
  },
};
export default benchCase;
