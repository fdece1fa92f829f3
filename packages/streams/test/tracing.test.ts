import { WakeBus } from '@x/redis-core';
import { TARGETS, connect, recordChannels, uniquePrefix, type TestClient } from '@x/testing';
import { StreamConsumer, StreamProducer } from '../src';
import { until } from './helpers';

const OPERATIONS = ['x:streams:publish', 'x:streams:commit'];
const EVENTS = ['x:streams:dead-lettered', 'x:streams:standby-took-over', 'x:streams:lease-lost'];

describe.each(TARGETS)('streams tracing channels on %s', (target) => {
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

  function consumer(prefix: string, handler: (sku: string) => void) {
    const c = new StreamConsumer<{ n: number }>(client, {
      prefix,
      stream: 'orders',
      group: 'g',
      mode: 'stateful',
      initialState: { n: 0 },
      blockMs: 200,
      retryDelayMs: 1,
      maxRetryDelayMs: 5,
      maxDeliveries: 2,
      leaseMs: 120_000,
      handler: (m, tx) => {
        handler(m.fields.sku!);
        tx.state.n += 1;
      },
    });
    started.push(c);
    return c;
  }

  it('publishes publishes and commits, a dead letter, and a standby taking over', async () => {
    const prefix = uniquePrefix();
    const rec = recordChannels({ operations: OPERATIONS, events: EVENTS });
    try {
      const producer = new StreamProducer(client, { prefix });
      await producer.publish('orders', { sku: 'A' });
      await producer.publish('orders', { sku: 'POISON' });
      const a = consumer(prefix, (sku) => {
        if (sku === 'POISON') throw new Error('cannot ship');
      });
      const b = consumer(prefix, () => undefined);
      await a.start();
      await b.start();
      await until(() => rec.events.some((e) => e.channel === 'x:streams:dead-lettered'), 'dead-lettered');
      await a.stop();
      await until(() => b.status === 'active', 'b took over');

      const publishes = rec.ended.filter((r) => r.channel === 'x:streams:publish');
      expect(publishes.map((r) => [r.context.resource, r.context.outcome, r.context.script])).toEqual([
        ['orders', 'ok', 'streams.publish'],
        ['orders', 'ok', 'streams.publish'],
      ]);
      const commits = rec.ended.filter((r) => r.channel === 'x:streams:commit');
      expect(commits[0]!.context).toMatchObject({ resource: 'orders', group: 'g', mode: 'stateful', script: 'streams.commit-stateful', outcome: 'ok' });
      expect(commits.reduce((n, r) => n + (r.context.messages as number), 0)).toBeGreaterThanOrEqual(1);
      const events = rec.events.map((e) => [e.context.event, e.context.resource, e.context.group]);
      expect(events).toEqual([
        ['dead-lettered', 'orders', 'g'],
        ['standby-took-over', 'orders', 'g'],
      ]);
      expect(rec.events[0]!.context).toMatchObject({ deliveries: 2, error: 'Error: cannot ship' });
    } finally {
      rec.stop();
    }
  });
});
