import { InvalidArgumentError, WakeBus } from '@x/redis-core';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { StreamConsumer, StreamProducer, describe as describeStream, redrive } from '../src';
import { until } from './helpers';

describe.each(TARGETS)('describe (streams) on %s', (target) => {
  let client: TestClient;
  let prefix: string;
  const started: Array<StreamConsumer<any>> = [];
  beforeAll(async () => {
    client = await connect(target);
  });
  beforeEach(() => {
    prefix = uniquePrefix();
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((c) => c.stop()));
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  it('reports length, groups, lease and dead letters, lists the streams, and re-drives a dead letter', async () => {
    const producer = new StreamProducer(client, { prefix });
    for (const sku of ['A', 'POISON', 'B']) await producer.publish('orders', { sku });
    await new StreamProducer(client, { prefix, space: 'eu' }).publish('orders', { sku: 'C' });
    let poison = true;
    const c = new StreamConsumer<{ n: number }>(client, {
      prefix, stream: 'orders', group: 'ship', mode: 'stateful', initialState: { n: 0 }, blockMs: 200, retryDelayMs: 1, maxRetryDelayMs: 5, maxDeliveries: 2,
      handler: (m, tx) => {
        if (m.fields.sku === 'POISON' && poison) throw new TypeError('cannot ship');
        tx.state!.n += 1;
      },
    });
    started.push(c);
    await c.start();
    await until(async () => (await describeStream(client, 'orders', { prefix }))?.deadLetters === 1, 'dead-lettered');
    await until(async () => (await describeStream(client, 'orders', { prefix }))?.groups[0]?.position !== null, 'committed');

    const state = (await describeStream(client, 'orders', { prefix }))!;
    expect(state).toMatchObject({ kind: 'streams', name: 'orders', space: 'default', length: 3, deadLetterStream: 'orders:dead', deadLetters: 1 });
    expect(state.groups).toHaveLength(1);
    expect(state.groups[0]).toMatchObject({ name: 'ship', mode: 'stateful', consumers: 1 });
    expect(state.groups[0]!.lease).toMatchObject({ live: true });
    expect(state.recentDeadLetters[0]).toMatchObject({ group: 'ship', error: 'TypeError: cannot ship', deliveries: 2, fields: JSON.stringify({ sku: 'POISON' }) });
    expect(await describeStream.list(client, { prefix })).toEqual([{ name: 'orders', space: 'default' }, { name: 'orders', space: 'eu' }]);

    poison = false;
    expect(await redrive(client, 'orders', { prefix })).toBe(1);
    await until(async () => c.state?.n === 3, 're-driven message processed');
    const after = (await describeStream(client, 'orders', { prefix }))!;
    expect(after).toMatchObject({ length: 4, deadLetters: 0, recentDeadLetters: [] });
  });

  it('returns null for a stream that does not exist, and rejects bad input before Redis', async () => {
    expect(await describeStream(client, 'none', { prefix })).toBeNull();
    await expect(describeStream(client, '', { prefix })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(redrive(client, 'orders', { prefix, count: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(redrive(client, 'orders', { prefix, deadId: 'x' })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
