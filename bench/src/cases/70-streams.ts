import { WakeBus } from '@x/redis-core';
import { StreamConsumer } from '@x/streams';
import type { BenchCase, BenchClient, BenchContext, Result } from '../harness';

// Each line drains a pre-filled stream of `n` messages with a no-op handler: messages per second,
// and client commands per batch (counted on the server). The baseline is the plainest correct
// at-least-once loop a user would write with node-redis: XREADGROUP COUNT b, then XACK the ids.
// (The parity target, atomic-redis-streams, is Python: there is no JS peer to run beside it.)

const PREFIX = 'bench';

async function fill(client: BenchClient, key: string, n: number): Promise<void> {
  for (let from = 0; from < n; from += 1_000) {
    await Promise.all(Array.from({ length: Math.min(1_000, n - from) }, (_, j) => client.xAdd(key, '*', { i: String(from + j), sku: 'A1', quantity: '1' })));
  }
}

function finish(ctx: BenchContext, label: string, gaps: number[], elapsedMs: number, commands: number, n: number, batch: number, baseline = false): Result {
  const perBatch = commands / Math.ceil(n / batch);
  const r = ctx.record(label, gaps, { elapsedMs, commands, baseline, note: `${perBatch.toFixed(2)} round trips per batch of ${batch}` });
  r.opsPerSec = n / (elapsedMs / 1000);
  r.roundTripsPerOp = commands / n;
  return r;
}

async function raw(ctx: BenchContext, client: BenchClient, batch: number, n: number, baseline: boolean): Promise<Result> {
  const key = `${PREFIX}:raw:${batch}:${Date.now()}`;
  await fill(client, key, n);
  await client.xGroupCreate(key, 'g', '0');
  await ctx.commands();
  const gaps: number[] = [];
  let last = performance.now();
  const started = last;
  let done = 0;
  while (done < n) {
    const reply = (await client.xReadGroup('g', 'c', { key, id: '>' }, { COUNT: batch })) as Array<{ messages: Array<{ id: string }> }> | null;
    const messages = reply?.[0]?.messages ?? [];
    if (messages.length === 0) break;
    for (const _m of messages) {
      const now = performance.now();
      gaps.push(now - last);
      last = now;
    }
    await client.xAck(key, 'g', messages.map((m) => m.id));
    done += messages.length;
  }
  const elapsedMs = performance.now() - started;
  const commands = await ctx.commands();
  await client.del(key);
  return finish(ctx, `raw node-redis XREADGROUP+XACK, batch ${batch}`, gaps, elapsedMs, commands, n, batch, baseline);
}

async function ours(ctx: BenchContext, client: BenchClient, mode: 'stateful' | 'competing', batch: number, n: number, raw = false): Promise<Result> {
  const prefix = `${PREFIX}${Date.now()}`;
  // The consumer's stream key: x:streams:{default}:s:sales under this prefix, or (raw) a plain
  // key as another service would write it, whose group hash lives under {<key>}.
  const key = raw ? `${prefix}-orders` : `${prefix}:streams:{default}:s:sales`;
  const groupKey = raw ? `${prefix}:streams:{${key}}:k:${key}:bench` : `${prefix}:streams:{default}:g:sales:bench`;
  await fill(client, key, n);
  const gaps: number[] = [];
  let last = 0;
  let handled = 0;
  let resolveAll!: () => void;
  const all = new Promise<void>((resolve) => (resolveAll = resolve));
  const consumer = new StreamConsumer<{ n: number } | null>(client, {
    prefix,
    stream: raw ? { key } : 'sales',
    group: 'bench',
    mode,
    ...(mode === 'stateful' ? { initialState: { n: 0 } } : {}),
    batchSize: batch,
    handler: () => {
      const now = performance.now();
      if (last) gaps.push(now - last);
      last = now;
      if (++handled === n) resolveAll();
    },
  });
  await ctx.commands();
  const started = performance.now();
  last = started;
  await consumer.start();
  await all;
  await consumer.stop();
  const elapsedMs = performance.now() - started;
  const commands = await ctx.commands();
  await client.del([key, groupKey]);
  return finish(ctx, `@x/streams ${mode}${raw ? ' on a raw key' : ''}, no-op handler, batch ${batch}`, gaps, elapsedMs, commands, n, batch);
}

const benchCase: BenchCase = {
  name: '@x/streams: messages per second, no-op handler, batch 1 and 100, named and raw keys',
  async run(ctx) {
    const client = await ctx.client();
    try {
      const results: Result[] = [];
      // Each line runs once untimed on a tenth of its messages first (script cache, JIT).
      const line = async (run: (n: number) => Promise<Result>, n: number) => {
        await run(Math.ceil(n / 10));
        results.push(await run(n));
      };
      await line((n) => raw(ctx, client, 100, n, true), 100_000);
      await line((n) => ours(ctx, client, 'stateful', 100, n), 100_000);
      await line((n) => ours(ctx, client, 'competing', 100, n), 100_000);
      await line((n) => ours(ctx, client, 'stateful', 100, n, true), 100_000);
      await line((n) => ours(ctx, client, 'competing', 100, n, true), 100_000);
      await line((n) => raw(ctx, client, 1, n, false), 5_000);
      await line((n) => ours(ctx, client, 'stateful', 1, n), 5_000);
      await line((n) => ours(ctx, client, 'competing', 1, n), 5_000);
      return results;
    } finally {
      await WakeBus.close(client);
    }
  },
};
export default benchCase;
