import { WakeBus, keyspace } from '@x/redis-core';
import { IdempotencyStore, type Acquired } from '@x/idempotency';
import type { BenchCase, Result } from '../harness';

const WAKE_ROUNDS = 300;

/**
 * Two scenarios of @x/idempotency:
 * 1. `run` on a completed key (one EVALSHA that replays the stored result) against a raw GET of a
 *    value of the same size: the spec asks for at least 0.8x the GET's throughput.
 * 2. How soon a waiting duplicate returns after the first run's `complete`, against the raw
 *    node-redis floor for the same hop (SPUBLISH → subscriber callback). The spec asks for a
 *    median within 1 ms of `complete`.
 */
const benchCase: BenchCase = {
  name: 'idempotency: run on a completed key',
  async run(ctx) {
    const client = await ctx.client();
    const prefix = `bench${Date.now().toString(36)}`;
    const store = new IdempotencyStore(client, { prefix });
    const result = { orderId: 'ord_8f3a1c', amount: 4_200, currency: 'EUR', at: new Date(), items: [1, 2, 3] };
    await store.set('order:1', result);
    await store.set('order:fp', result, { fingerprint: { amount: 4_200, currency: 'EUR' } });
    const rawKey = `${prefix}:raw`;
    const stored = await client.hGet(keyspace(prefix, 'idempotency', 'order:1').key('record'), 'value');
    await client.set(rawKey, stored ?? '');
    const notRun = (): never => {
      throw new Error('the operation ran on a completed key');
    };

    const results: Result[] = [];
    results.push(await ctx.measure('raw node-redis GET (same value)', () => client.get(rawKey), { iterations: 20_000, baseline: true }));
    // The floor of any one-script operation: a raw EVALSHA of a one-line HMGET on the same record.
    const record = keyspace(prefix, 'idempotency', 'order:1').key('record');
    const hmget = await client.scriptLoad("return redis.call('HMGET', KEYS[1], 'state', 'value')");
    results.push(await ctx.measure('raw node-redis evalSha (1-line HMGET script)', () => client.evalSha(hmget, { keys: [record] }), { iterations: 20_000 }));
    results.push(await ctx.measure('store.run, completed key (replay)', () => store.run('order:1', notRun), { iterations: 20_000 }));
    results.push(
      await ctx.measure('store.run, completed key, with fingerprint', () => store.run('order:fp', notRun, { fingerprint: { currency: 'EUR', amount: 4_200 } }), {
        iterations: 20_000,
      }),
    );
    results.push(await ctx.measure('store.get', () => store.get('order:1'), { iterations: 20_000 }));
    results.push(await ctx.measure('raw node-redis GET, 16 in flight', () => client.get(rawKey), { iterations: 50_000, concurrency: 16 }));
    results.push(await ctx.measure('store.run replay, 16 in flight', () => store.run('order:1', notRun), { iterations: 50_000, concurrency: 16 }));

    results.push(...(await wakeLatency(ctx, prefix)));
    await WakeBus.close(client);
    return results;
  },
};
export default benchCase;

async function wakeLatency(ctx: Parameters<BenchCase['run']>[0], prefix: string): Promise<Result[]> {
  const scenario = 'idempotency: duplicate-wait wake latency';
  const owner = await ctx.client();
  const waiterClient = await ctx.client();
  const ownerStore = new IdempotencyStore(owner, { prefix, leaseMs: 60_000 });
  const waiterStore = new IdempotencyStore(waiterClient, { prefix, leaseMs: 60_000 });
  const bus = WakeBus.for(waiterClient);

  // The floor: a raw SPUBLISH from one connection to a subscriber on another.
  const sub = waiterClient.duplicate();
  sub.on('error', () => undefined);
  await sub.connect();
  const channel = keyspace(prefix, 'raw', 'wake').channel;
  let arrived: (() => void) | undefined;
  await sub.sSubscribe(channel, () => arrived?.());
  const raw: number[] = [];
  for (let i = 0; i < WAKE_ROUNDS; i++) {
    const got = new Promise<number>((resolve) => (arrived = () => resolve(performance.now())));
    const t0 = performance.now();
    await owner.sPublish(channel, 'x');
    raw.push((await got) - t0);
  }
  await sub.sUnsubscribe(channel);
  sub.destroy();

  const fromCall: number[] = [];
  const fromReply: number[] = [];
  for (let i = 0; i < WAKE_ROUNDS; i++) {
    const key = `wake:${i}`;
    const claim = (await ownerStore.begin(key, { keepAlive: false })) as Acquired;
    let returnedAt = 0;
    const waiter = waiterStore
      .run(key, () => 'duplicate ran', { waitMs: 10_000 })
      .then((value) => {
        returnedAt = performance.now();
        return value;
      });
    // Parked: subscribed, and its re-check found the key still running.
    while (bus.listenerCount === 0) await new Promise((r) => setTimeout(r, 1));
    await new Promise((r) => setTimeout(r, 2));
    const t0 = performance.now();
    await ownerStore.complete(key, claim.token, { n: i });
    const t1 = performance.now();
    const value = await waiter;
    if ((value as { n?: number }).n !== i) throw new Error('the waiter did not get the first run\'s result');
    fromCall.push(returnedAt - t0);
    fromReply.push(returnedAt - t1);
  }
  await WakeBus.close(waiterClient);

  // elapsedMs = the sum of the latencies, so ops/s is 1 / mean latency and the ratio compares means.
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const line = (label: string, xs: number[], baseline: boolean, note: string): Result => ({
    ...ctx.record(label, xs, { elapsedMs: sum(xs), baseline, note }),
    case: scenario,
  });
  return [
    line('raw SPUBLISH → subscriber callback', raw, true, 'latency floor of one wake-up hop'),
    line('waiter returns, from complete() call', fromCall, false, 'includes the complete round trip'),
    line('waiter returns, from complete() reply', fromReply, false, 'spec: median within 1 ms'),
  ];
}
