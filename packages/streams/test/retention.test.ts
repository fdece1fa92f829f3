import { InvalidArgumentError, WakeBus } from '@x/redis-core';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { StreamConsumer, type StreamConsumerOptions } from '../src';
import { groupKeys } from '../src/keys';
import { deferred, entries, until, within } from './helpers';

describe.each(TARGETS)('retention on %s', (target) => {
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

  async function xadd(key: string, n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let from = 0; from < n; from += 100) {
      ids.push(...(await Promise.all(Array.from({ length: Math.min(100, n - from) }, (_, j) => client.xAdd(key, '*', { i: String(from + j) })))));
    }
    return ids;
  }

  const drained = (key: string, group: string, last: string) => async () => {
    const groups = (await client.xInfoGroups(key)) as Array<Record<string, unknown>>;
    const g = groups.find((x) => x.name === group);
    return !!g && g['last-delivered-id'] === last && g.pending === 0;
  };

  it('never trims anything unless asked', async () => {
    const prefix = uniquePrefix();
    const key = `${prefix}:streams:orders`;
    const out = `${prefix}:streams:{${key}}:out`;
    const ids = await xadd(key, 250);
    const c = consumer<{ n: number }>({ prefix, stream: { key }, batchSize: 50, initialState: { n: 0 }, handler: (m, tx) => void ((tx.state.n += 1), tx.publish({ key: out }, { i: m.fields.i! })) });
    await c.start();
    await until(() => c.state?.n === 250, 'all handled');
    await c.stop();
    expect([await client.xLen(key), await client.xLen(out)]).toEqual([250, 250]);
    expect((await entries(client, key))[0]!.id).toBe(ids[0]);
  });

  it('bounds the outputs by maxLen (exact) and by age', async () => {
    const prefix = uniquePrefix();
    const key = `${prefix}:streams:orders`;
    const out = `${prefix}:streams:{${key}}:out`;
    const old = `${prefix}:streams:{${key}}:old`;
    await client.xAdd(old, '1-0', { ancient: 'yes' });
    await xadd(key, 20);
    const c = consumer<{ n: number }>({
      prefix,
      stream: { key },
      batchSize: 3,
      initialState: { n: 0 },
      outputRetention: { maxLen: 5, maxAgeMs: 3_600_000, approximate: false },
      handler: (m, tx) => {
        tx.state.n += 1;
        tx.publish({ key: out }, { i: m.fields.i! });
        if (m.fields.i === '19') tx.publish({ key: old }, { fresh: 'yes' });
      },
    });
    await c.start();
    await until(() => c.state?.n === 20, 'all handled');
    await c.stop();
    expect((await entries(client, out)).map((e) => e.fields.i)).toEqual(['15', '16', '17', '18', '19']);
    expect((await entries(client, old)).map((e) => e.fields)).toEqual([{ fresh: 'yes' }]);
  });

  it('trims outputs approximately by default: whole nodes only, never below maxLen', async () => {
    const prefix = uniquePrefix();
    const key = `${prefix}:streams:orders`;
    const out = `${prefix}:streams:{${key}}:out`;
    await xadd(key, 600);
    const c = consumer<{ n: number }>({ prefix, stream: { key }, batchSize: 100, initialState: { n: 0 }, outputRetention: { maxLen: 50 }, handler: (m, tx) => void ((tx.state.n += 1), tx.publish({ key: out }, { i: m.fields.i! })) });
    await c.start();
    await until(() => c.state?.n === 600, 'all handled');
    await c.stop();
    const kept = (await entries(client, out)).map((e) => Number(e.fields.i));
    expect(kept.length).toBeGreaterThanOrEqual(50);
    expect(kept.length).toBeLessThan(600);
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, j) => 600 - kept.length + j));
  });

  it('bounds the dead-letter stream', async () => {
    const prefix = uniquePrefix();
    const key = `${prefix}:streams:orders`;
    await xadd(key, 4);
    const c = consumer<{ n: number }>({
      prefix,
      stream: { key },
      maxDeliveries: 1,
      initialState: { n: 0 },
      deadLetterRetention: { maxLen: 2, approximate: false },
      handler: () => {
        throw new Error('poison');
      },
    });
    await c.start();
    const dead = groupKeys(prefix, 'default', { key }, 'g', undefined).dead;
    await until(async () => ((await client.xInfoGroups(key)) as Array<{ pending: number; 'last-delivered-id': string }>)[0]?.pending === 0 && (await client.xLen(dead)) === 2 && (await entries(client, dead)).some((e) => JSON.parse(e.fields.fields!).i === '3'), 'four dead-lettered');
    expect((await entries(client, dead)).map((e) => JSON.parse(e.fields.fields!).i)).toEqual(['2', '3']);
  });

  it.each(['stateful', 'competing'] as const)(
    "%s, trim: 'acknowledged': deletes what every group acknowledged, never an entry another group still has pending or has not read",
    async (mode) => {
      const prefix = uniquePrefix();
      const key = `${prefix}:streams:orders`;
      const ids = await xadd(key, 500);
      // Group 'slow' stops in the middle: 150..159 delivered and pending, 160.. not yet read.
      const gate = deferred();
      const entered = deferred();
      const slowSeen: number[] = [];
      const slow = consumer<{ n: number }>({
        prefix,
        stream: { key },
        group: 'slow',
        batchSize: 10,
        initialState: { n: 0 },
        handler: async (m, tx) => {
          if (m.fields.i === '150' && m.deliveries === 1) {
            entered.resolve();
            await gate.promise;
          }
          slowSeen.push(Number(m.fields.i));
          tx.state.n += 1;
        },
      });
      await slow.start();
      await within(entered.promise, 'slow group at 150');
      const fastSeen: number[] = [];
      const fast = consumer<{ n: number } | null>({
        prefix,
        stream: { key },
        group: 'fast',
        mode,
        ...(mode === 'stateful' ? { initialState: { n: 0 } } : {}),
        batchSize: 20,
        trim: 'acknowledged',
        handler: (m) => void fastSeen.push(Number(m.fields.i)),
      });
      await fast.start();
      await until(drained(key, 'fast', ids[499]!), 'fast group drained');
      // Something was trimmed, and nothing at or after the slow group's oldest pending entry.
      expect(await client.xLen(key)).toBeLessThan(500);
      expect(((await client.xRange(key, ids[150]!, '+')) as unknown[]).length).toBe(350);
      gate.resolve();
      await until(() => slow.state?.n === 500, 'slow group done');
      await slow.stop();
      expect(slowSeen).toEqual(Array.from({ length: 500 }, (_, i) => i));
      expect([...fastSeen].sort((a, b) => a - b)).toEqual(Array.from({ length: 500 }, (_, i) => i));
      // One more commit after both are done trims (approximately) what both acknowledged.
      const last = await client.xAdd(key, '*', { i: 'last' });
      await until(drained(key, 'fast', last), 'fast read the last one');
      expect(await client.xLen(key)).toBeLessThan(300);
    },
  );

  it("trim: 'acknowledged' keeps the whole stream while a group has read nothing", async () => {
    const prefix = uniquePrefix();
    const key = `${prefix}:streams:orders`;
    const ids = await xadd(key, 300);
    await client.xGroupCreate(key, 'idle', '0');
    const c = consumer<{ n: number }>({ prefix, stream: { key }, batchSize: 50, trim: 'acknowledged', initialState: { n: 0 }, handler: (_m, tx) => void (tx.state.n += 1) });
    await c.start();
    await until(drained(key, 'g', ids[299]!), 'drained');
    expect(await client.xLen(key)).toBe(300);
  });

  it.each<[string, Partial<StreamConsumerOptions<null>>]>([
    ['an unknown trim', { trim: 'always' as never }],
    ['an empty retention', { outputRetention: {} }],
    ['a zero maxLen', { outputRetention: { maxLen: 0 } }],
    ['a fractional maxAgeMs', { deadLetterRetention: { maxAgeMs: 1.5 } }],
    ['a non-boolean approximate', { outputRetention: { maxLen: 5, approximate: 'yes' as never } }],
  ])('rejects %s with InvalidArgumentError', (_label, overrides) => {
    expect(() => new StreamConsumer(client, { stream: 's', group: 'g', handler: () => undefined, ...overrides })).toThrow(InvalidArgumentError);
  });
});
