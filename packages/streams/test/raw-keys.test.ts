import { InvalidArgumentError, WakeBus } from '@x/redis-core';
import { TARGETS, clusterNodes, connect, uniquePrefix, type TestClient } from '@x/testing';
import { createClient } from 'redis';
import { StreamConsumer, StreamCrossSlotError, StreamProducer, type StreamConsumerOptions, type StreamKey } from '../src';
import { groupKeys } from '../src/keys';
import { slotOf, tagFor } from '../src/slots';
import { entries, groupHash, until } from './helpers';

type Tally = { count: number; sum: number };

describe.each(TARGETS)('consuming a stream by its Redis key on %s', (target) => {
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

  function consumer<S>(options: Partial<StreamConsumerOptions<S>> & Pick<StreamConsumerOptions<S>, 'handler' | 'stream'>) {
    const c = new StreamConsumer<S>(client, { group: 'billing', blockMs: 200, retryDelayMs: 1, maxRetryDelayMs: 5, ...options } as StreamConsumerOptions<S>);
    started.push(c);
    return c;
  }

  /** Plain XADD, as another service or `redis-cli` would write. */
  async function xadd(key: string, from: number, n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = from; i < from + n; i++) ids.push(await client.xAdd(key, '*', { i: String(i), v: String(i % 7) }));
    return ids;
  }

  it.each([
    ['a key without a hash tag', (p: string) => `${p}:streams:orders`],
    ['a key with a hash tag', (p: string) => `${p}:streams:{${p}}:orders`],
  ])('stateful, %s: entries added with XADD before and during the run are processed once, in order, and the state is restored on restart', async (_label, keyOf) => {
    const prefix = uniquePrefix();
    const key = keyOf(prefix);
    const out = `${prefix}:streams:{${tagFor(key)}}:totals`;
    const before = await xadd(key, 0, 25);
    const seen: string[] = [];
    const options = {
      prefix,
      stream: { key },
      batchSize: 7,
      initialState: { count: 0, sum: 0 },
      handler: (m: { id: string; stream: string; fields: Record<string, string> }, tx: { state: Tally; publish: (t: StreamKey, f: Record<string, string>) => void }) => {
        expect(m.stream).toBe(key);
        seen.push(m.id);
        tx.state.count += 1;
        tx.state.sum += Number(m.fields.v);
        tx.publish({ key: out }, { i: m.fields.i!, sum: String(tx.state.sum) });
      },
    };
    const a = consumer<Tally>(options);
    await a.start();
    expect(a.status).toBe('active');
    const during = await xadd(key, 25, 25);
    await until(() => seen.length === 50, 'fifty handled');
    await a.stop();
    const after = await xadd(key, 50, 10);
    const b = consumer<Tally>(options);
    await b.start();
    expect(b.state).toMatchObject({ count: 50 });
    await until(() => seen.length === 60, 'the restarted consumer handled the rest');
    await b.stop();
    const all = [...before, ...during, ...after];
    expect(seen).toEqual(all);
    const sum = Array.from({ length: 60 }, (_, i) => i % 7).reduce((x, y) => x + y, 0);
    expect(b.state).toEqual({ count: 60, sum });
    expect((await entries(client, out)).map((e) => e.fields.i)).toEqual(Array.from({ length: 60 }, (_, i) => String(i)));
    // The group's keys sit in the source's slot, under the prefix.
    const k = groupKeys(prefix, 'default', { key }, 'billing', undefined);
    expect(k.group.startsWith(`${prefix}:streams:{${tagFor(key)}}:`)).toBe(true);
    expect(slotOf(k.group)).toBe(slotOf(key));
    expect(JSON.parse((await groupHash(client, k.group)).state!)).toEqual({ count: 60, sum });
    expect(((await client.xPending(key, 'billing')) as { pending: number }).pending).toBe(0);
  });

  it('competing: entries added with XADD are shared by two consumers, each handled once', async () => {
    const prefix = uniquePrefix();
    const key = `${prefix}:streams:jobs`;
    await xadd(key, 0, 30);
    const handled: string[] = [];
    const make = (name: string) =>
      consumer<null>({ prefix, stream: { key }, mode: 'competing', consumerName: name, batchSize: 4, handler: (m) => void handled.push(m.fields.i!) });
    const cs = [make('c1'), make('c2')];
    await Promise.all(cs.map((c) => c.start()));
    await xadd(key, 30, 30);
    await until(() => handled.length >= 60 , 'sixty handled');
    await until(async () => ((await client.xPending(key, 'billing')) as { pending: number }).pending === 0, 'all acknowledged');
    expect(handled.map(Number).sort((x, y) => x - y)).toEqual(Array.from({ length: 60 }, (_, i) => i));
  });

  it('dead-letters a poison message of a raw key into a stream of the same slot', async () => {
    const prefix = uniquePrefix();
    const key = `${prefix}:streams:orders`;
    const [id] = await xadd(key, 0, 1);
    const c = consumer<Tally>({ prefix, stream: { key }, maxDeliveries: 2, initialState: { count: 0, sum: 0 }, handler: () => {
      throw new Error('poison');
    } });
    await c.start();
    const k = groupKeys(prefix, 'default', { key }, 'billing', undefined);
    expect(k.dead).toBe(`${prefix}:streams:{${key}}:dead:${key}`);
    await until(async () => (await client.xLen(k.dead)) === 1, 'dead-lettered');
    const [dead] = await entries(client, k.dead);
    expect(dead!.fields).toMatchObject({ id, stream: key, group: 'billing', error: 'Error: poison', deliveries: '2' });
  });

  it('StreamProducer.publish({ key }) appends to the raw key', async () => {
    const prefix = uniquePrefix();
    const key = `${prefix}:streams:raw`;
    const producer = new StreamProducer(client, { prefix });
    const id = await producer.publish({ key }, { a: '1' });
    expect(await entries(client, key)).toEqual([{ id, fields: { a: '1' } }]);
    await expect(producer.publish({ key: '' }, { a: '1' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(producer.publish({ key: 7 } as never, { a: '1' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(producer.publish({ key }, {})).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await client.xLen(key)).toBe(1);
  });

  it.each<[string, unknown]>([
    ['an empty key', { key: '' }],
    ['a key that is not a string', { key: 42 }],
    ['an object without key', {}],
  ])('rejects a stream given as %s with InvalidArgumentError, writing nothing', async (_label, stream) => {
    const prefix = uniquePrefix();
    expect(() => new StreamConsumer(client, { prefix, stream: stream as never, group: 'g', handler: () => undefined })).toThrow(InvalidArgumentError);
    expect(await client.exists(`${prefix}:streams:{default}:s:sales`)).toBe(0);
  });

  it('rejects a dead-letter stream equal to the source key', () => {
    expect(() => new StreamConsumer(client, { stream: { key: 'k' }, deadLetterStream: { key: 'k' }, group: 'g', handler: () => undefined })).toThrow(InvalidArgumentError);
  });

  if (target === 'cluster') {
    it('computes the slot of a key as Redis Cluster does', async () => {
      const node = createClient({ url: `redis://${clusterNodes()[0]}` });
      node.on('error', () => undefined);
      await node.connect();
      try {
        for (const key of ['orders', 'foo', '{user1000}.following', 'a{}b', 'a}b{c}', '{a', 'ключ', 'x:streams:{default}:s:sales', '}{']) {
          expect([key, slotOf(key)]).toEqual([key, Number(await node.sendCommand(['CLUSTER', 'KEYSLOT', key]))]);
          expect(slotOf(`p:{${tagFor(key)}}:g`)).toBe(slotOf(key));
        }
      } finally {
        await node.close();
      }
    });

    it('refuses at start() a dead-letter key outside the source slot with StreamCrossSlotError, writing nothing', async () => {
      const prefix = uniquePrefix();
      const key = `${prefix}:streams:orders`;
      const dead = `${prefix}:streams:orders-dead`;
      expect(slotOf(dead)).not.toBe(slotOf(key));
      const c = consumer<Tally>({ prefix, stream: { key }, deadLetterStream: { key: dead }, initialState: { count: 0, sum: 0 }, handler: () => undefined });
      const error = (await c.start().catch((e: unknown) => e)) as StreamCrossSlotError;
      expect(error).toBeInstanceOf(StreamCrossSlotError);
      expect(error.code).toBe('STREAM_CROSS_SLOT');
      expect(error.keys).toEqual([key, dead]);
      expect(error.message).toContain(`{${key}}:${dead}`);
      const k = groupKeys(prefix, 'default', { key }, 'billing', { key: dead });
      expect(await client.exists(k.group)).toBe(0);
      expect(await client.exists(key)).toBe(0);
      expect(c.status).toBe('stopped');
    });

    it('refuses tx.publish to a key of another slot with StreamCrossSlotError naming both keys (never a server CROSSSLOT)', async () => {
      const prefix = uniquePrefix();
      const key = `${prefix}:streams:orders`;
      const elsewhere = `${prefix}:streams:alerts`;
      expect(slotOf(elsewhere)).not.toBe(slotOf(key));
      await xadd(key, 0, 1);
      const errors: unknown[] = [];
      const c = consumer<Tally>({
        prefix,
        stream: { key },
        maxDeliveries: 1,
        initialState: { count: 0, sum: 0 },
        onError: (e) => errors.push(e),
        handler: (m, tx) => tx.publish({ key: elsewhere }, { i: m.fields.i! }),
      });
      await c.start();
      const k = groupKeys(prefix, 'default', { key }, 'billing', undefined);
      await until(async () => (await client.xLen(k.dead)) === 1, 'dead-lettered');
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBeInstanceOf(StreamCrossSlotError);
      expect((errors[0] as StreamCrossSlotError).keys).toEqual([key, elsewhere]);
      expect((await entries(client, k.dead))[0]!.fields.error).toMatch(/^StreamCrossSlotError: .*hash tag/);
      expect(await client.exists(elsewhere)).toBe(0);
    });
  } else {
    it('on a single Redis, publishes to and dead-letters into any key', async () => {
      const prefix = uniquePrefix();
      const key = `${prefix}:streams:orders`;
      await xadd(key, 0, 2);
      const c = consumer<Tally>({
        prefix,
        stream: { key },
        deadLetterStream: { key: `${prefix}:streams:dead` },
        maxDeliveries: 1,
        initialState: { count: 0, sum: 0 },
        handler: (m, tx) => {
          if (m.fields.i === '1') throw new Error('no');
          tx.publish({ key: `${prefix}:streams:alerts` }, { i: m.fields.i! });
        },
      });
      await c.start();
      await until(async () => (await client.xLen(`${prefix}:streams:dead`)) === 1, 'dead-lettered');
      expect((await entries(client, `${prefix}:streams:alerts`)).map((e) => e.fields.i)).toEqual(['0']);
    });
  }
});
