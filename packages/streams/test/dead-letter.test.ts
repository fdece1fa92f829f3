import { WakeBus } from '@x/redis-core';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { StreamConsumer, StreamProducer, type StreamConsumerOptions, type StreamMode } from '../src';
import { STATEFUL_CONSUMER } from '../src/options';
import { entries, keysOf, until } from './helpers';

describe.each(TARGETS)('dead-letter stream on %s', (target) => {
  let client: TestClient;
  const started: Array<StreamConsumer<any>> = [];
  beforeAll(async () => {
    client = await connect(target);
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((c) => c.stop()));
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  function consumer(mode: StreamMode, options: Partial<StreamConsumerOptions<{ n: number }>> & { prefix: string }) {
    const base = { stream: 'orders', group: 'g', blockMs: 200, retryDelayMs: 1, maxRetryDelayMs: 5, maxDeliveries: 3 } as const;
    const c = new StreamConsumer<{ n: number }>(client, {
      ...base,
      mode,
      ...(mode === 'stateful' ? { initialState: { n: 0 } } : {}),
      handler: () => undefined,
      ...options,
    });
    started.push(c);
    return c;
  }

  it.each(['stateful', 'competing'] as const)('%s: moves a poison message to the dead-letter stream after maxDeliveries, with its error, and goes on', async (mode) => {
    const prefix = uniquePrefix();
    const k = keysOf(prefix, 'orders');
    const producer = new StreamProducer(client, { prefix });
    const ids = [];
    for (const sku of ['A', 'POISON', 'B']) ids.push(await producer.publish('orders', { sku }));
    const attempts: number[] = [];
    const c = consumer(mode, {
      prefix,
      handler: (m, tx) => {
        if (m.fields.sku === 'POISON') {
          attempts.push(m.deliveries);
          tx.publish('shipped', { sku: 'never' });
          throw new TypeError(`cannot ship ${m.fields.sku}`);
        }
        if (tx.state) tx.state.n += 1;
        tx.publish('shipped', { sku: m.fields.sku! });
      },
    });
    await c.start();
    await until(async () => (await entries(client, k.dead)).length === 1 && (await entries(client, k.out('shipped'))).length === 2, 'poison parked');
    await c.stop();
    expect(attempts).toEqual([1, 2, 3]);
    const [dead] = await entries(client, k.dead);
    expect(dead!.fields).toEqual({
      id: ids[1],
      stream: 'orders',
      group: 'g',
      error: 'TypeError: cannot ship POISON',
      deliveries: '3',
      fields: JSON.stringify({ sku: 'POISON' }),
    });
    expect((await entries(client, k.out('shipped'))).map((e) => e.fields.sku)).toEqual(['A', 'B']);
    if (mode === 'stateful') expect(c.state).toEqual({ n: 2 });
    expect(((await client.xPending(k.stream, 'g')) as { pending: number }).pending).toBe(0);
  });

  it('dead-letters without calling the handler a message delivered more than maxDeliveries times (its handler kept crashing the process)', async () => {
    const prefix = uniquePrefix();
    const k = keysOf(prefix, 'orders');
    const producer = new StreamProducer(client, { prefix });
    const crashing = await producer.publish('orders', { sku: 'CRASH' });
    await producer.publish('orders', { sku: 'OK' });
    // Three earlier processors read it and died in its handler: it is pending with 3 deliveries.
    await client.xGroupCreate(k.stream, 'g', '0');
    await client.hSet(k.group, 'mode', 'stateful');
    await client.xReadGroup('g', STATEFUL_CONSUMER, { key: k.stream, id: '>' }, { COUNT: 1 });
    await client.xClaim(k.stream, 'g', STATEFUL_CONSUMER, 0, crashing, { RETRYCOUNT: 3 });
    const handled: string[] = [];
    const c = consumer('stateful', { prefix, handler: (m, tx) => void (handled.push(m.fields.sku!), (tx.state.n += 1)) });
    await c.start();
    await until(() => c.state?.n === 1, 'the next message handled');
    expect(handled).toEqual(['OK']);
    const [dead] = await entries(client, k.dead);
    expect(dead!.fields.id).toBe(crashing);
    expect(dead!.fields.error).toMatch(/delivered 3 times without a verdict/);
  });
});
