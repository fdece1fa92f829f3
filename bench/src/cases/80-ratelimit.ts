import { RateLimiter } from '@x/ratelimit';
import { WakeBus } from '@x/redis-core';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import type { BenchCase, BenchClient, BenchContext, Result } from '../harness';

const HOUR = 3_600_000;
const BIG = 1_000_000_000;

/** Client CPU (µs per op, process.cpuUsage) and server time (µs per op, INFO commandstats) of one more pass of `op`. */
async function costs(client: BenchClient, op: () => Promise<unknown>, ops: number, concurrency: number): Promise<{ cpuUsPerOp: number; serverUsPerOp: number }> {
  await client.sendCommand(['CONFIG', 'RESETSTAT']);
  const cpu = process.cpuUsage();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < ops) {
        next += 1;
        await op();
      }
    }),
  );
  const used = process.cpuUsage(cpu);
  const info = String(await client.sendCommand(['INFO', 'commandstats']));
  let usec = 0;
  for (const m of info.matchAll(/^cmdstat_([a-z|]+):calls=\d+,usec=(\d+)/gm)) {
    if (!/^(info|config)/.test(m[1]!)) usec += Number(m[2]);
  }
  return { cpuUsPerOp: (used.user + used.system) / ops, serverUsPerOp: usec / ops };
}

async function measured(
  ctx: BenchContext,
  client: BenchClient,
  scenario: string,
  label: string,
  op: () => Promise<unknown>,
  options: { concurrency: number; iterations: number; baseline?: boolean },
): Promise<Result> {
  const result = await ctx.measure(label, op, options);
  const c = await costs(client, op, Math.min(options.iterations, 10_000), options.concurrency);
  result.case = scenario;
  result.note = `client CPU ${c.cpuUsPerOp.toFixed(1)} µs/op, server ${c.serverUsPerOp.toFixed(1)} µs/op`;
  return Object.assign(result, c);
}

/**
 * `limit` of @x/ratelimit (gcra, fixed-window, sliding-window) beside a raw INCR + PEXPIRE fixed
 * window and rate-limiter-flexible's RateLimiterRedis on the same node-redis client, at 1 and 50
 * calls in flight; then refused calls with and without the deny cache.
 */
const benchCase: BenchCase = {
  name: '@x/ratelimit: limit',
  async run(ctx) {
    const client = await ctx.client();
    const prefix = `b${Date.now().toString(36)}`;
    const results: Result[] = [];
    const limits = [{ limit: BIG, windowMs: HOUR }];
    const gcra = new RateLimiter(client, 'bench', { prefix, limits });
    const fixed = new RateLimiter(client, 'bench', { prefix, limits, algorithm: 'fixed-window' });
    const sliding = new RateLimiter(client, 'bench', { prefix, limits: [{ limit: BIG, windowMs: 1_000 }], algorithm: 'sliding-window' });
    const flexible = new RateLimiterRedis({ storeClient: client, useRedisPackage: true, points: BIG, duration: 3_600, keyPrefix: `${prefix}:rlf` });
    const rawKey = `${prefix}:raw`;
    const raw = async (): Promise<boolean> => {
      const n = await client.incr(rawKey);
      if (n === 1) await client.pExpire(rawKey, HOUR);
      return n <= BIG;
    };
    try {
      for (const concurrency of [1, 50]) {
        const scenario = `@x/ratelimit: limit, ${concurrency} in flight (admitted calls; one key)`;
        const iterations = concurrency === 1 ? 5_000 : 30_000;
        const o = { concurrency, iterations };
        results.push(await measured(ctx, client, scenario, 'raw INCR + PEXPIRE fixed window', raw, { ...o, baseline: true }));
        results.push(await measured(ctx, client, scenario, 'rate-limiter-flexible RateLimiterRedis.consume', () => flexible.consume('user'), o));
        results.push(await measured(ctx, client, scenario, '@x/ratelimit limit (gcra)', () => gcra.limit('user'), o));
        results.push(await measured(ctx, client, scenario, '@x/ratelimit limit (fixed-window)', () => fixed.limit('user'), o));
        results.push(await measured(ctx, client, scenario, '@x/ratelimit limit (sliding-window, log)', () => sliding.limit('user'), { ...o, iterations: Math.min(iterations, 10_000) }));
      }
      // Refused calls: a key over its limit, asked again and again.
      const scenario = '@x/ratelimit: refused calls, 50 in flight (one key over its limit)';
      const tight = [{ limit: 1, windowMs: HOUR }];
      const refusing = new RateLimiter(client, 'refused', { prefix, limits: tight });
      const cached = new RateLimiter(client, 'refused-cached', { prefix, limits: tight, denyCache: true });
      await refusing.limit('user');
      await cached.limit('user');
      const o = { concurrency: 50, iterations: 30_000 };
      results.push(await measured(ctx, client, scenario, 'raw INCR + PEXPIRE fixed window', raw, { ...o, baseline: true }));
      results.push(await measured(ctx, client, scenario, '@x/ratelimit limit, refused', () => refusing.limit('user'), o));
      results.push(
        await measured(ctx, client, scenario, '@x/ratelimit limit, refused, denyCache', () => cached.limit('user'), { ...o, iterations: 200_000 }),
      );
    } finally {
      await WakeBus.close(client);
    }
    return results;
  },
};

export default benchCase;
