import { WakeBus } from '@x/redis-core';
import { Lock, closeRedisResources } from '@x/lock';
import IORedis from 'ioredis';
import Redlock from 'redlock';
import { Mutex } from 'redis-semaphore';
import type { BenchCase, Result } from '../harness';
import { handOff, type Contender } from '../hand-off';

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

const benchCase: BenchCase = {
  name: '@x/lock: uncontended acquire+release, and 20-way contended hand-off',
  async run(ctx) {
    const client = await ctx.client();
    const io = new IORedis(ctx.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
    const results: Result[] = [];
    try {
      const releaseSha = await client.scriptLoad(RELEASE);
      let n = 0;
      results.push(
        await ctx.measure(
          'raw node-redis SET NX PX + compare-and-delete',
          async () => {
            const token = `t${n++}`;
            await client.set('bench:raw:lock', token, { NX: true, PX: 30_000 } as never);
            await client.evalSha(releaseSha, { keys: ['bench:raw:lock'], arguments: [token] });
          },
          { iterations: 3_000, baseline: true },
        ),
      );
      const lock = new Lock(client, 'uncontended', { prefix: 'bench' });
      results.push(
        await ctx.measure('@x/lock tryAcquire+release', async () => {
          const held = await lock.tryAcquire();
          await held!.release();
        }, { iterations: 3_000 }),
      );
      results.push(
        await ctx.measure('@x/lock acquire+release', async () => {
          const held = await lock.acquire();
          await held.release();
        }, { iterations: 3_000 }),
      );
      // What a service that locks `order:<id>` does: a new Lock per operation, on 50 keys.
      let k = 0;
      results.push(
        await ctx.measure('@x/lock new Lock per op, tryAcquire+release (50 keys)', async () => {
          const held = await new Lock(client, `order:${k++ % 50}`, { prefix: 'bench' }).tryAcquire();
          await held!.release();
        }, { iterations: 3_000 }),
      );
      let r = 0;
      results.push(
        await ctx.measure('raw SET NX PX + compare-and-delete, 50 in flight on 50 keys', async () => {
          const key = `bench:raw:order:${r++ % 50}`;
          const token = `t${r}`;
          if ((await client.set(key, token, { NX: true, PX: 30_000 } as never)) !== 'OK') return;
          await client.evalSha(releaseSha, { keys: [key], arguments: [token] });
        }, { iterations: 10_000, concurrency: 50 }),
      );
      let m = 0;
      results.push(
        await ctx.measure('@x/lock new Lock per op, 50 in flight on 50 keys', async () => {
          const held = await new Lock(client, `order:${m++ % 50}`, { prefix: 'bench' }).tryAcquire();
          await held?.release();
        }, { iterations: 10_000, concurrency: 50 }),
      );
      // Ours on the same ioredis client as the peers below: like for like.
      const ioLock = new Lock(io, 'uncontended-io', { prefix: 'bench' });
      results.push(
        await ctx.measure('@x/lock acquire+release on ioredis', async () => {
          const held = await ioLock.acquire();
          await held.release();
        }, { iterations: 3_000 }),
      );
      const redlock = new Redlock([io]);
      results.push(
        await ctx.measure('redlock acquire+release (defaults)', async () => {
          const held = await redlock.acquire(['bench:redlock:uncontended'], 30_000);
          await held.release();
        }, { iterations: 3_000 }),
      );
      const mutex = new Mutex(io, 'bench:sem:uncontended');
      results.push(
        await ctx.measure('redis-semaphore Mutex acquire+release (defaults)', async () => {
          await mutex.acquire();
          await mutex.release();
        }, { iterations: 3_000 }),
      );

      // Contended hand-off: 20 contenders, each with its own lock object on one shared client per
      // library (one process, as a service with 20 concurrent requests would have).
      const raw: Contender[] = Array.from({ length: 20 }, (_, i) => ({
        async acquire() {
          const token = `c${i}-${Math.random()}`;
          // A raw client has no way to wait: retry every millisecond.
          while ((await client.set('bench:raw:contended', token, { NX: true, PX: 30_000 } as never)) !== 'OK') {
            await new Promise((r) => setTimeout(r, 1));
          }
          return async () => void (await client.evalSha(releaseSha, { keys: ['bench:raw:contended'], arguments: [token] }));
        },
      }));
      const ours: Contender[] = Array.from({ length: 20 }, () => {
        const l = new Lock(client, 'contended', { prefix: 'bench' });
        return { acquire: async () => { const h = await l.acquire(); return () => h.release(); } };
      });
      const oursIo: Contender[] = Array.from({ length: 20 }, () => {
        const l = new Lock(io, 'contended-io', { prefix: 'bench' });
        return { acquire: async () => { const h = await l.acquire(); return () => h.release(); } };
      });
      const redlockContended = new Redlock([io], { retryCount: -1 });
      const redlocks: Contender[] = Array.from({ length: 20 }, () => ({
        acquire: async () => { const h = await redlockContended.acquire(['bench:redlock:contended'], 30_000); return async () => void (await h.release()); },
      }));
      const mutexes: Contender[] = Array.from({ length: 20 }, () => {
        const m = new Mutex(io, 'bench:sem:contended', { acquireTimeout: 600_000 });
        return { acquire: async () => { await m.acquire(); return () => m.release(); } };
      });
      const contended: Result[] = [];
      contended.push(await handOff(ctx, 'raw SET NX PX, retry every 1 ms', raw, 1_000, { baseline: true }));
      contended.push(await handOff(ctx, '@x/lock acquire (push hand-off)', ours, 1_000));
      contended.push(await handOff(ctx, '@x/lock acquire on ioredis (push hand-off)', oursIo, 1_000));
      contended.push(await handOff(ctx, 'redis-semaphore Mutex (polls every 10 ms)', mutexes, 300));
      contended.push(await handOff(ctx, 'redlock (retry 200 ms + jitter, retryCount -1)', redlocks, 60));
      for (const r of contended) r.case = '@x/lock: 20-way contended hand-off (latency = release → next grant; ops/s = grants/s; RT/op per grant)';
      return [...results, ...contended];
    } finally {
      await WakeBus.close(client);
      await closeRedisResources(io);
      io.disconnect();
    }
  },
};
export default benchCase;
