import { WakeBus, keyspace } from '@x/redis-core';
import { LeasedKeyQueue, type Lease } from '@x/leasedkeyq';
import type { BenchCase, BenchClient, BenchContext, Result } from '../harness';

// Fills a queue with `count` new items in one script call, writing what `put` writes for an absent
// key (a position from meta.tail in the available ZSET, the value in the values hash), so a
// million-item queue takes a few hundred calls instead of a million.
const FILL = `
local n = tonumber(ARGV[2]) - tonumber(ARGV[1]) + 1
local tail = redis.call('HINCRBY', KEYS[3], 'tail', n) - n
local z, h = {}, {}
for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do
  local key = 'fill-' .. i
  tail = tail + 1
  z[#z + 1] = tail; z[#z + 1] = key
  h[#h + 1] = key; h[#h + 1] = ARGV[3]
end
redis.call('ZADD', KEYS[1], unpack(z))
redis.call('HSET', KEYS[2], unpack(h))
return n`;

const BIG = Number(process.env.LKQ_BENCH_BIG ?? 1_000_000);
const CHUNK = 2_000;

async function fill(client: BenchClient, sha: string, prefix: string, name: string, count: number): Promise<void> {
  const ks = keyspace(prefix, 'leasedkeyq', name);
  const keys = [ks.key('avail'), ks.key('vals'), ks.key('meta')];
  const value = JSON.stringify({ payload: 'x'.repeat(32) });
  const calls: Array<Promise<unknown>> = [];
  for (let from = 0; from < count; from += CHUNK) {
    calls.push(client.evalSha(sha, { keys, arguments: [String(from), String(Math.min(count, from + CHUNK) - 1), value] }));
    // A few calls in flight at once: pipelined, without holding a million promises.
    if (calls.length >= 8) await Promise.all(calls.splice(0));
  }
  await Promise.all(calls);
}

/**
 * A blocked consumer, then a put: the time from the put being sent to the consumer holding the
 * item. `block` starts the consumer; the case waits until it is parked before putting.
 */
async function wakeLatency(
  ctx: BenchContext,
  label: string,
  rounds: number,
  block: () => Promise<unknown>,
  parked: () => Promise<boolean>,
  put: () => Promise<unknown>,
  settle?: () => Promise<unknown>,
): Promise<Result> {
  const latencies: number[] = [];
  const started = performance.now();
  let waited = 0;
  for (let i = 0; i < rounds; i++) {
    const consumer = block();
    const t0 = performance.now();
    while (!(await parked())) await new Promise((r) => setTimeout(r, 1));
    waited += performance.now() - t0;
    const sent = performance.now();
    await Promise.all([put(), consumer.then(() => latencies.push(performance.now() - sent))]);
    await settle?.();
  }
  return ctx.record(label, latencies, { elapsedMs: performance.now() - started - waited, note: 'p50/p99 = put sent -> consumer has the item' });
}

/**
 * put+get+ack throughput beside a raw LPUSH+BRPOP loop, the wake-up latency of a blocked get
 * beside a blocked BRPOP, and the cost of put+get+ack with 10, 10,000 and 1,000,000 items queued.
 */
const benchCase: BenchCase = {
  name: '@x/leasedkeyq: put+get+ack throughput, get wake-up latency, cost vs queue length',
  async run(ctx) {
    const client = await ctx.client();
    const consumerClient = await ctx.client();
    const blocking = await ctx.client();
    const results: Result[] = [];
    const prefix = `bench${Date.now().toString(36)}`;
    try {
      // Throughput from one process: 64 chains, each put, get, ack.
      let n = 0;
      results.push(
        await ctx.measure(
          'raw node-redis LPUSH + BRPOP, 64 in flight',
          async () => {
            await client.lPush('bench:raw:queue', `v${n++}`);
            await client.brPop('bench:raw:queue', 1);
          },
          { iterations: 20_000, concurrency: 64, baseline: true },
        ),
      );
      const q = new LeasedKeyQueue<{ i: number }>(client, 'throughput', { prefix });
      results.push(
        await ctx.measure(
          '@x/leasedkeyq put+get+ack, 64 in flight',
          async () => {
            const i = n++;
            await q.put(`k${i}`, { i });
            const { lease } = await q.get();
            await q.ack(lease);
          },
          { iterations: 10_000, concurrency: 64, note: 'one item = 3 scripts' },
        ),
      );
      results.push(
        await ctx.measure(
          'raw node-redis LPUSH + BRPOP, sequential',
          async () => {
            await client.lPush('bench:raw:queue', `v${n++}`);
            await client.brPop('bench:raw:queue', 1);
          },
          { iterations: 2_000 },
        ),
      );
      results.push(
        await ctx.measure(
          '@x/leasedkeyq put+get+ack, sequential',
          async () => {
            const i = n++;
            await q.put(`k${i}`, { i });
            const { lease } = await q.get();
            await q.ack(lease);
          },
          { iterations: 2_000 },
        ),
      );

      // Wake-up latency: a consumer blocked on an empty queue, then one put.
      results.push(
        await wakeLatency(
          ctx,
          'raw node-redis BRPOP woken by LPUSH',
          200,
          () => blocking.brPop('bench:raw:wake', 5),
          async () => /blocked_clients:1\b/.test(String(await client.sendCommand(['INFO', 'clients']))),
          () => client.lPush('bench:raw:wake', 'x'),
        ),
      );
      const producer = new LeasedKeyQueue<{ i: number }>(client, 'wake', { prefix });
      const consumer = new LeasedKeyQueue<{ i: number }>(consumerClient, 'wake', { prefix });
      const waiters = keyspace(prefix, 'leasedkeyq', 'wake').key('waiters');
      const leases: Lease[] = [];
      results.push(
        await wakeLatency(
          ctx,
          '@x/leasedkeyq get woken by put',
          200,
          () => consumer.get({ timeoutMs: 5_000 }).then(({ lease }) => leases.push(lease)),
          async () => (await client.zCard(waiters)) > 0,
          () => producer.put(`w${n++}`, { i: n }),
          () => consumer.ack(leases.pop()!),
        ),
      );
      // The ratio column compares with the throughput baseline; compare these two lines' p50/p99.
      results[results.length - 2]!.note = 'latency baseline: compare p50/p99 with the next line';

      // Cost per put+get+ack with the queue holding 10, 10,000 and BIG items (each op puts one
      // item at the back and leases one from the front, so the length stays put).
      const fillSha = await client.scriptLoad(FILL);
      for (const size of [10, 10_000, BIG]) {
        const name = `size-${size}`;
        const t0 = performance.now();
        await fill(client, fillSha, prefix, name, size);
        const fillMs = performance.now() - t0;
        const sized = new LeasedKeyQueue<{ i: number }>(client, name, { prefix });
        results.push(
          await ctx.measure(
            `@x/leasedkeyq put+get+ack, ${size.toLocaleString('en-US')} queued`,
            async () => {
              const i = n++;
              await sized.put(`k${i}`, { i });
              const { lease } = await sized.get();
              await sized.ack(lease);
            },
            { iterations: 2_000, note: `filled in ${(fillMs / 1000).toFixed(1)} s` },
          ),
        );
        const ks = keyspace(prefix, 'leasedkeyq', name);
        await client.unlink(
          ['avail', 'vals', 'next', 'leases', 'exp', 'meta', 'waiters', 'takers', 'acked', 'dlv', 'errs', 'delayed', 'dfront', 'dead', 'deadrec'].map((s) =>
            ks.key(s),
          ),
        );
      }
    } finally {
      await WakeBus.close(consumerClient);
      await WakeBus.close(client);
      await client.del(['bench:raw:queue', 'bench:raw:wake']);
    }
    return results;
  },
};
export default benchCase;
