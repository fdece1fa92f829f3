import { WakeBus } from '@x/redis-core';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { StreamConsumer, StreamProducer, type StreamConsumerOptions } from '../src';
import { deferred, entries, keysOf, until, within } from './helpers';

describe.each(TARGETS)('StreamConsumer in competing mode on %s', (target) => {
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

  function consumer(options: Partial<StreamConsumerOptions<null>> & Pick<StreamConsumerOptions<null>, 'handler' | 'prefix'>) {
    const c = new StreamConsumer<null>(client, { stream: 'jobs', group: 'g', mode: 'competing', blockMs: 200, retryDelayMs: 1, ...options });
    started.push(c);
    return c;
  }

  async function publish(prefix: string, n: number): Promise<string[]> {
    const producer = new StreamProducer(client, { prefix });
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push(await producer.publish('jobs', { i: String(i) }));
    return ids;
  }

  it('shares the messages of a group among consumers: each one handled and published exactly once', async () => {
    const prefix = uniquePrefix();
    const k = keysOf(prefix, 'jobs');
    const handledBy = new Map<string, string[]>();
    const make = (name: string) =>
      consumer({
        prefix,
        batchSize: 3,
        consumerName: name,
        handler: async (m, tx) => {
          handledBy.set(name, [...(handledBy.get(name) ?? []), m.id]);
          tx.publish('done', { i: m.fields.i!, by: name });
          await new Promise((r) => setImmediate(r));
        },
      });
    const consumers = [make('c1'), make('c2'), make('c3')];
    await Promise.all(consumers.map((c) => c.start()));
    const ids = await publish(prefix, 60);
    await until(async () => (await entries(client, k.out('done'))).length >= 60, 'sixty published');
    await Promise.all(consumers.map((c) => c.stop()));
    const done = await entries(client, k.out('done'));
    expect(done.map((e) => Number(e.fields.i)).sort((a, b) => a - b)).toEqual(ids.map((_, i) => i));
    const handled = [...handledBy.values()].flat().sort();
    expect(handled).toEqual([...ids].sort());
    expect(((await client.xPending(k.stream, 'g')) as { pending: number }).pending).toBe(0);
  });

  it('claims the messages of a consumer that stopped answering after claimIdleMs, and the slow one cannot commit them', async () => {
    const prefix = uniquePrefix();
    const k = keysOf(prefix, 'jobs');
    const gate = deferred();
    const entered = deferred();
    const slowErrors: string[] = [];
    const slow = consumer({
      prefix,
      consumerName: 'slow',
      claimIdleMs: 300,
      onError: (e) => slowErrors.push((e as { code?: string }).code ?? String(e)),
      handler: async (m, tx) => {
        tx.publish('done', { i: m.fields.i!, by: 'slow' });
        entered.resolve();
        await gate.promise;
      },
    });
    await slow.start();
    await publish(prefix, 1);
    await within(entered.promise, 'slow consumer took the message');
    const fast = consumer({
      prefix,
      consumerName: 'fast',
      claimIdleMs: 300,
      handler: (m, tx) => tx.publish('done', { i: m.fields.i!, by: 'fast' }),
    });
    await fast.start();
    await until(async () => (await entries(client, k.out('done'))).length === 1, 'claimed and handled by fast');
    gate.resolve();
    await until(() => slowErrors.length > 0, 'slow consumer learned it lost the message');
    await slow.stop();
    expect(slowErrors).toEqual(['STREAM_FENCED']);
    expect((await entries(client, k.out('done'))).map((e) => e.fields)).toEqual([{ i: '0', by: 'fast' }]);
  });

  it('hands unhandled messages back on stop so that another consumer takes them', async () => {
    const prefix = uniquePrefix();
    const k = keysOf(prefix, 'jobs');
    await publish(prefix, 5);
    const gate = deferred();
    const entered = deferred();
    const first = consumer({
      prefix,
      consumerName: 'first',
      batchSize: 5,
      claimIdleMs: 60_000,
      handler: async (_m, tx) => {
        tx.publish('done', { by: 'first' });
        entered.resolve();
        await gate.promise;
      },
    });
    await first.start();
    await within(entered.promise, 'first took a batch of five');
    const stopping = first.stop();
    gate.resolve();
    await stopping;
    const second = consumer({ prefix, consumerName: 'second', claimIdleMs: 60_000, handler: (_m, tx) => tx.publish('done', { by: 'second' }) });
    await second.start();
    // Handed back idle for claimIdleMs: claimed by the second's first claim pass, not a minute later.
    await until(async () => (await entries(client, k.out('done'))).length === 5, 'all five done', 10_000);
    const by = (await entries(client, k.out('done'))).map((e) => e.fields.by);
    expect(by).toEqual(['first', 'second', 'second', 'second', 'second']);
  });
});
