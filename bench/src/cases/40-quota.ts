import { Quota } from '@x/quota';
import type { BenchCase, BenchContext, Result } from '../harness';

// The raw baseline: the least a client can do for a bounded decrement in one round trip.
const GUARDED_DECRBY = `
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = tonumber(ARGV[1])
if v >= n then redis.call('DECRBY', KEYS[1], n) return 1 end
return 0`;

/**
 * @x/quota against a guarded DECRBY script: tryConsume, reserve+commit, the local consumer, and
 * the cost of a call as pending reservations pile up (10, 1,000, 100,000).
 */
const benchCase: BenchCase = {
  name: 'quota: tryConsume, reserve+commit, localConsumer, pending holds',
  async run(ctx) {
    const client = await ctx.client();
    const run = `b${Date.now().toString(36)}`;
    const quota = new Quota(client, { prefix: run });
    const results: Result[] = [];

    const rawKey = `${run}:raw:{credits}`;
    await client.set(rawKey, String(1e12));
    const sha = await client.scriptLoad(GUARDED_DECRBY);
    results.push(
      await ctx.measure('raw evalSha guarded DECRBY', () => client.evalSha(sha, { keys: [rawKey], arguments: ['1'] }), {
        iterations: 20_000,
        baseline: true,
      }),
    );
    await quota.topUp('credits', 1e12);
    results.push(await ctx.measure('quota.tryConsume(1)', () => quota.tryConsume('credits', 1), { iterations: 20_000 }));
    results.push(
      await ctx.measure('raw evalSha guarded DECRBY, 16 in flight', () => client.evalSha(sha, { keys: [rawKey], arguments: ['1'] }), {
        iterations: 50_000,
        concurrency: 16,
      }),
    );
    results.push(
      await ctx.measure('quota.tryConsume(1), 16 in flight', () => quota.tryConsume('credits', 1), { iterations: 50_000, concurrency: 16 }),
    );
    results.push(
      await ctx.measure(
        'quota.reserve + commit',
        async () => {
          const hold = await quota.reserve('credits', 1);
          await quota.commit('credits', hold.reservationId);
        },
        { iterations: 5_000, note: 'two calls' },
      ),
    );
    results.push(await localConsumer(ctx, quota));

    // All three resources are set up first, then measured back to back, so that drift on a busy
    // machine does not pass for a trend.
    const levels = [10, 1_000, 100_000];
    for (const pending of levels) {
      await quota.topUp(`pending-${pending}`, 1e12);
      await holdMany(quota, `pending-${pending}`, pending, 600_000);
    }
    for (const pending of levels) {
      const resource = `pending-${pending}`;
      results.push(
        await ctx.measure(`tryConsume(1), ${pending.toLocaleString('en')} pending holds`, () => quota.tryConsume(resource, 1), {
          iterations: 10_000,
          note: 'flat = pending holds cost nothing',
        }),
      );
    }
    for (const pending of levels) {
      const resource = `pending-${pending}`;
      results.push(
        await ctx.measure(
          `reserve + commit, ${pending.toLocaleString('en')} pending holds`,
          async () => {
            const hold = await quota.reserve(resource, 1);
            await quota.commit(resource, hold.reservationId);
          },
          { iterations: 3_000, note: 'two calls' },
        ),
      );
    }

    // One call that finds 10,000 holds expired reclaims them all, in its one round trip. Timed on
    // one resource, counted (MONITOR on) on another, since MONITOR slows the server.
    for (const resource of ['expiring', 'expiring-counted']) {
      await quota.topUp(resource, 1e6);
      await holdMany(quota, resource, 10_000, 3_000);
    }
    await new Promise((r) => setTimeout(r, 3_100));
    const started = performance.now();
    const after = await quota.getState('expiring');
    const elapsedMs = performance.now() - started;
    await ctx.commands();
    const counted = await quota.getState('expiring-counted');
    const commands = await ctx.commands();
    if (after.reserved !== 0 || counted.reserved !== 0) throw new Error('reclaim did not happen');
    results.push(ctx.record('getState reclaiming 10,000 expired holds', [elapsedMs], { elapsedMs, commands, note: 'one call' }));
    return results;
  },
};
export default benchCase;

async function holdMany(quota: Quota, resource: string, count: number, ttlMs: number): Promise<void> {
  const batch = 500;
  for (let i = 0; i < count; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, count - i) }, () => quota.reserve(resource, 1, { ttlMs })));
  }
}

/** consume(1) timed in batches of 1,000 (per-call timing would cost more than the call). */
async function localConsumer(ctx: BenchContext, quota: Quota): Promise<Result> {
  await quota.topUp('local', 1e12);
  const consumer = quota.localConsumer('local', { chunkSize: 100_000 });
  for (let i = 0; i < 200_000; i++) await consumer.consume(1);
  const batches = 2_000;
  const perBatch = 1_000;
  const latencies: number[] = [];
  const started = performance.now();
  for (let b = 0; b < batches; b++) {
    const t = performance.now();
    for (let i = 0; i < perBatch; i++) await consumer.consume(1);
    const each = (performance.now() - t) / perBatch;
    for (let i = 0; i < perBatch; i++) latencies.push(each);
  }
  const elapsedMs = performance.now() - started;
  // Round trips in a pass of their own (MONITOR slows the server): 200,000 calls, a few refills.
  const counted = 200_000;
  await ctx.commands();
  for (let i = 0; i < counted; i++) await consumer.consume(1);
  const commands = await ctx.commands();
  await consumer.close();
  const result = ctx.record('localConsumer().consume(1)', latencies, { elapsedMs, note: 'latency = batch mean; target >= 1,000,000/s' });
  result.roundTripsPerOp = commands / counted;
  return result;
}
