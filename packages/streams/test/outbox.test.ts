import { WakeBus } from '@x/redis-core';
import { TARGETS, connect, spawnWorker, uniquePrefix, type TestClient } from '@x/testing';
import { StreamConsumer, type StreamConsumerOptions } from '../src';
import { groupKeys } from '../src/keys';
import { slotOf } from '../src/slots';
import { entries, until } from './helpers';

const FIXTURE = require.resolve('./fixtures/processor.cjs');

describe.each(TARGETS)('the outbox on %s', (target) => {
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

  function consumer<S>(options: Partial<StreamConsumerOptions<S>> & Pick<StreamConsumerOptions<S>, 'handler' | 'stream' | 'prefix'>) {
    const c = new StreamConsumer<S>(client, { group: 'g', blockMs: 200, retryDelayMs: 1, maxRetryDelayMs: 5, outbox: true, ...options } as StreamConsumerOptions<S>);
    started.push(c);
    return c;
  }

  async function xadd(key: string, n: number): Promise<void> {
    for (let i = 0; i < n; i++) await client.xAdd(key, '*', { i: String(i), v: String((i * 7) % 13) });
  }

  it('stateful: a publish to a key of another slot reaches it once per message, in order; a failed message stages nothing', async () => {
    const prefix = uniquePrefix();
    const key = `${prefix}:streams:orders`;
    const far = `${prefix}:streams:elsewhere`;
    const near = `${prefix}:streams:{${key}}:near`;
    expect(slotOf(far)).not.toBe(slotOf(key));
    await xadd(key, 40);
    const c = consumer<{ n: number }>({
      prefix,
      stream: { key },
      batchSize: 7,
      maxDeliveries: 1,
      initialState: { n: 0 },
      handler: (m, tx) => {
        tx.publish({ key: far }, { i: m.fields.i! });
        tx.publish({ key: near }, { i: m.fields.i! });
        tx.publish({ key: far }, { i: m.fields.i!, second: 'yes' });
        if (m.fields.i === '13') throw new Error('unlucky');
        tx.state.n += 1;
      },
    });
    await c.start();
    await until(async () => c.state?.n === 39 && (await client.xLen(far)) === 78, 'all relayed');
    await c.stop();
    const expected = Array.from({ length: 40 }, (_, i) => String(i)).filter((i) => i !== '13');
    expect((await entries(client, far)).map((e) => e.fields)).toEqual(expected.flatMap((i) => [{ i }, { i, second: 'yes' }]));
    expect((await entries(client, near)).map((e) => e.fields.i)).toEqual(expected);
    expect(await client.xLen(groupKeys(prefix, 'default', { key }, 'g', undefined).outbox)).toBe(0);
  });

  it('competing: two consumers, every cross-slot publish exactly once', async () => {
    const prefix = uniquePrefix();
    const key = `${prefix}:streams:jobs`;
    const far = `${prefix}:streams:done`;
    await xadd(key, 60);
    const make = (name: string) => consumer<null>({ prefix, stream: { key }, mode: 'competing', consumerName: name, batchSize: 5, handler: (m, tx) => tx.publish({ key: far }, { i: m.fields.i! }) });
    const cs = [make('a'), make('b')];
    await Promise.all(cs.map((c) => c.start()));
    await until(async () => (await client.xLen(far)) >= 60 && ((await client.xPending(key, 'g')) as { pending: number }).pending === 0, 'sixty relayed');
    await Promise.all(cs.map((c) => c.stop()));
    expect((await entries(client, far)).map((e) => Number(e.fields.i)).sort((x, y) => x - y)).toEqual(Array.from({ length: 60 }, (_, i) => i));
    expect(await client.xLen(groupKeys(prefix, 'default', { key }, 'g', undefined).outbox)).toBe(0);
  });

  if (target === 'cluster') {
    const TOTAL = 2_000;
    const expectedOut = (() => {
      let sum = 0;
      return Array.from({ length: TOTAL }, (_, i) => {
        sum += (i * 7) % 13;
        return { i: String(i), sum: String(sum) };
      });
    })();

    async function fill(key: string): Promise<void> {
      for (let from = 0; from < TOTAL; from += 500) {
        await Promise.all(Array.from({ length: 500 }, (_, j) => client.xAdd(key, '*', { i: String(from + j), v: String(((from + j) * 7) % 13) })));
      }
    }

    it.each([
      ['before-relay', { RELAY_CRASH_N: '700' }],
      ['after-relay', { RELAY_CRASH_N: '1300' }],
      ['inside-handler', { CRASH_I: '1000' }],
      ['after-commit', { CRASH_I: '1500' }],
    ])('SIGKILLed at %s and restarted: every cross-slot publish reached its target exactly once, in order', async (point, extra) => {
      const prefix = uniquePrefix();
      const key = `${prefix}:streams:raw`;
      const far = `${prefix}:streams:relayed-out`;
      expect(slotOf(far)).not.toBe(slotOf(key));
      await fill(key);
      const env = { TARGET: target, PREFIX: prefix, TOTAL: String(TOTAL), BATCH: '50', LEASE_MS: '1000', RAW: '1', OUTBOX: '1' };
      const doomed = spawnWorker(FIXTURE, { env: { ...env, ...extra }, crashAt: point });
      await doomed.reached(point);
      await doomed.kill();
      const relayedBefore = await client.xLen(far);
      expect(relayedBefore).toBeLessThan(TOTAL);
      const rest = spawnWorker(FIXTURE, { env });
      expect(await rest.exited()).toBe(0);
      expect((await entries(client, far)).map((e) => e.fields)).toEqual(expectedOut);
      const g = groupKeys(prefix, 'default', { key }, 'tracker', undefined);
      expect(await client.xLen(g.outbox)).toBe(0);
      expect(JSON.parse((await client.hGet(g.group, 'state'))!)).toMatchObject({ count: TOTAL });
    });
  }
});

describe.each(TARGETS)('the outbox and spaces on %s', (target) => {
  it('with outbox: true, a publish to a stream of another space is delivered (relayed on a Cluster)', async () => {
    const client = await connect(target);
    const prefix = uniquePrefix();
    const c = new StreamConsumer<{ n: number }>(client, {
      prefix,
      stream: 'sales',
      group: 'g',
      blockMs: 200,
      outbox: true,
      initialState: { n: 0 },
      handler: (m, tx) => {
        tx.publish({ space: 'billing', stream: 'invoices' }, { i: m.fields.i! });
        tx.state.n += 1;
      },
    });
    try {
      const { StreamProducer } = await import('../src');
      for (let i = 0; i < 5; i++) await new StreamProducer(client, { prefix }).publish('sales', { i: String(i) });
      await c.start();
      const invoices = `${prefix}:streams:{billing}:s:invoices`;
      await until(async () => (await client.xLen(invoices)) === 5 && c.state?.n === 5, 'five invoices');
      expect((await entries(client, invoices)).map((e) => e.fields.i)).toEqual(['0', '1', '2', '3', '4']);
    } finally {
      await c.stop();
      await WakeBus.close(client);
      await client.close();
    }
  });
});
