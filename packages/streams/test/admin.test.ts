import { InvalidArgumentError, WakeBus } from '@x/redis-core';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { StreamAdmin, StreamConsumer, type StreamConsumerOptions } from '../src';
import { groupKeys } from '../src/keys';
import { deferred, entries, until, within } from './helpers';

describe.each(TARGETS)('StreamAdmin on %s', (target) => {
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
    const c = new StreamConsumer<S>(client, { group: 'g', blockMs: 200, retryDelayMs: 1, maxRetryDelayMs: 5, ...options } as StreamConsumerOptions<S>);
    started.push(c);
    return c;
  }

  async function xadd(key: string, from: number, n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = from; i < from + n; i++) ids.push(await client.xAdd(key, '*', { i: String(i) }));
    return ids;
  }

  it('reads a group that never started: nothing exists yet, and nothing is written', async () => {
    const prefix = uniquePrefix();
    const key = `${prefix}:streams:orders`;
    const info = await new StreamAdmin(client, { prefix, stream: { key }, group: 'g' }).info();
    expect(info).toEqual({
      exists: false,
      mode: null,
      state: undefined,
      position: null,
      lastDeliveredId: null,
      pending: 0,
      lag: null,
      consumers: 0,
      leaseExpiresAt: null,
      epoch: null,
      length: 0,
      deadLetters: 0,
    });
    expect(await client.exists([key, groupKeys(prefix, 'default', { key }, 'g', undefined).group])).toBe(0);
  });

  it('reads pending count, lag, lease and state of a running group without starting a consumer', async () => {
    const prefix = uniquePrefix();
    const key = `${prefix}:streams:orders`;
    const ids = await xadd(key, 0, 25);
    const gate = deferred();
    const entered = deferred();
    const c = consumer<{ n: number }>({
      prefix,
      stream: { key },
      batchSize: 10,
      initialState: { n: 0 },
      handler: async (m, tx) => {
        if (m.fields.i === '12') {
          entered.resolve();
          await gate.promise;
        }
        tx.state.n += 1;
      },
    });
    await c.start();
    await within(entered.promise, 'handler of message 12 entered');
    const admin = new StreamAdmin<{ n: number }>(client, { prefix, stream: { key }, group: 'g' });
    const info = await admin.info();
    // The first batch (0..9) committed; the second (10..19) is delivered, so pending; 20..24 wait.
    expect(info).toMatchObject({ exists: true, mode: 'stateful', state: { n: 10 }, position: ids[9], pending: 10, lag: 5, lastDeliveredId: ids[19], length: 25, deadLetters: 0 });
    expect(info.leaseExpiresAt).toBeGreaterThan(0);
    gate.resolve();
    await until(() => c.state?.n === 25, 'all handled');
    await c.stop();
    expect(await admin.info()).toMatchObject({ state: { n: 25 }, position: ids[24], pending: 0, lag: 0, leaseExpiresAt: null });
  });

  it('lists dead letters and re-drives each to its source once', async () => {
    const prefix = uniquePrefix();
    const key = `${prefix}:streams:orders`;
    const ids = await xadd(key, 0, 4);
    let healed = false;
    const handled: string[] = [];
    const c = consumer<{ n: number }>({
      prefix,
      stream: { key },
      maxDeliveries: 1,
      initialState: { n: 0 },
      handler: (m, tx) => {
        if (!healed && (m.fields.i === '1' || m.fields.i === '2')) throw new Error(`cannot ${m.fields.i}`);
        handled.push(m.fields.i!);
        tx.state.n += 1;
      },
    });
    await c.start();
    const admin = new StreamAdmin(client, { prefix, stream: { key }, group: 'g' });
    await until(async () => (await admin.info()).deadLetters === 2 && c.state?.n === 2, 'two dead, two handled');
    const dead = await admin.deadLetters();
    expect(dead.map((d) => [d.sourceId, d.stream, d.group, d.error, d.deliveries, d.fields])).toEqual([
      [ids[1], key, 'g', 'Error: cannot 1', 1, { i: '1' }],
      [ids[2], key, 'g', 'Error: cannot 2', 1, { i: '2' }],
    ]);
    expect((await admin.deadLetters({ after: dead[0]!.id })).map((d) => d.sourceId)).toEqual([ids[2]]);
    healed = true;
    const first = await admin.redrive({ ids: [dead[0]!.id] });
    expect(first).toEqual([{ id: dead[0]!.id, outcome: 'redriven', newId: expect.stringMatching(/^\d+-\d+$/) }]);
    // Resent (a lost reply): the dead letter is gone, nothing is added twice.
    expect(await admin.redrive({ ids: [dead[0]!.id] })).toEqual([{ id: dead[0]!.id, outcome: 'missing', newId: null }]);
    const rest = await admin.redrive();
    expect(rest.map((r) => [r.id, r.outcome])).toEqual([[dead[1]!.id, 'redriven']]);
    await until(() => c.state?.n === 4, 'the re-driven messages handled');
    expect(handled).toEqual(['0', '3', '1', '2']);
    expect((await entries(client, key)).map((e) => e.fields.i)).toEqual(['0', '1', '2', '3', '1', '2']);
    expect(await admin.info()).toMatchObject({ deadLetters: 0, pending: 0 });
  });

  it('leaves dead letters of another source in place', async () => {
    const prefix = uniquePrefix();
    const admin = new StreamAdmin(client, { prefix, stream: 'a', group: 'g', deadLetterStream: 'shared-dead' });
    const dead = groupKeys(prefix, 'default', 'a', 'g', 'shared-dead').dead;
    const id = await client.xAdd(dead, '*', { id: '1-0', stream: 'b', group: 'g', error: 'x', deliveries: '1', fields: '{"i":"1"}' });
    expect(await admin.redrive()).toEqual([{ id, outcome: 'other-stream', newId: null }]);
    expect(await client.xLen(dead)).toBe(1);
  });

  it.each<[string, (a: StreamAdmin) => Promise<unknown>]>([
    ['a zero count', (a) => a.deadLetters({ count: 0 })],
    ['a malformed after', (a) => a.deadLetters({ after: 'yesterday' })],
    ['a malformed id', (a) => a.redrive({ ids: ['1-0', 'nope'] })],
    ['a count above 10,000', (a) => a.redrive({ count: 10_001 })],
  ])('rejects %s with InvalidArgumentError, writing nothing', async (_label, call) => {
    const prefix = uniquePrefix();
    const key = `${prefix}:streams:orders`;
    await expect(call(new StreamAdmin(client, { prefix, stream: { key }, group: 'g' }))).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await client.exists(key)).toBe(0);
  });

  it('rejects bad options with InvalidArgumentError', () => {
    expect(() => new StreamAdmin(client, { stream: { key: '' }, group: 'g' })).toThrow(InvalidArgumentError);
    expect(() => new StreamAdmin(client, { stream: 's', group: '' })).toThrow(InvalidArgumentError);
    expect(() => new StreamAdmin(client, { stream: 's', group: 'g', prefix: 'a{' })).toThrow(InvalidArgumentError);
  });
});
