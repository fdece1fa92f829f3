import { WakeBus } from '@x/redis-core';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { StreamConsumer, StreamProducer, type StreamConsumerOptions } from '../src';
import { deferred, entries, groupHash, keysOf, until, within } from './helpers';

type Stock = { stock: number; seen: number };

describe.each(TARGETS)('StreamConsumer in stateful mode on %s', (target) => {
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

  function consumer<S>(options: Partial<StreamConsumerOptions<S>> & Pick<StreamConsumerOptions<S>, 'handler' | 'prefix'>, on = client) {
    const c = new StreamConsumer<S>(on, { stream: 'sales', group: 'g', blockMs: 200, retryDelayMs: 1, ...options } as StreamConsumerOptions<S>);
    started.push(c);
    return c;
  }

  async function publish(prefix: string, n: number, from = 0, stream = 'sales'): Promise<string[]> {
    const producer = new StreamProducer(client, { prefix });
    const ids: string[] = [];
    for (let i = from; i < from + n; i++) ids.push(await producer.publish(stream, { i: String(i), quantity: '1' }));
    return ids;
  }

  it('processes every message in stream order, starting a new group at the beginning of the stream', async () => {
    const prefix = uniquePrefix();
    const ids = await publish(prefix, 23);
    const order: string[] = [];
    const c = consumer<Stock>({
      prefix,
      batchSize: 4,
      initialState: { stock: 100, seen: 0 },
      handler: (m, tx) => {
        order.push(m.id);
        tx.state.stock -= Number(m.fields.quantity);
        tx.state.seen += 1;
      },
    });
    await c.start();
    expect(c.status).toBe('active');
    await until(() => order.length === 23, 'all messages handled');
    await c.stop();
    expect(order).toEqual(ids);
    expect(c.state).toEqual({ stock: 77, seen: 23 });
    const stored = await groupHash(client, keysOf(prefix, 'sales').group);
    expect(JSON.parse(stored.state!)).toEqual({ stock: 77, seen: 23 });
    expect(stored.pos).toBe(ids[22]);
  });

  it('restores the state on restart and does not reprocess committed messages', async () => {
    const prefix = uniquePrefix();
    await publish(prefix, 10);
    const first: string[] = [];
    const handler = (log: string[]) => (m: { fields: Record<string, string> }, tx: { state: Stock }) => {
      log.push(m.fields.i!);
      tx.state.seen += 1;
      tx.state.stock -= 1;
    };
    const a = consumer<Stock>({ prefix, initialState: { stock: 50, seen: 0 }, handler: handler(first) });
    await a.start();
    await until(() => first.length === 10, 'first run done');
    await a.stop();
    await publish(prefix, 5, 10);
    const second: string[] = [];
    const b = consumer<Stock>({ prefix, initialState: { stock: 50, seen: 0 }, handler: handler(second) });
    await b.start();
    expect(b.state).toEqual({ stock: 40, seen: 10 });
    await until(() => second.length === 5, 'second run done');
    await b.stop();
    expect(second).toEqual(['10', '11', '12', '13', '14']);
    expect(b.state).toEqual({ stock: 35, seen: 15 });
  });

  it('commits state and publishes together, and rolls back the publishes of a handler that throws', async () => {
    const prefix = uniquePrefix();
    await publish(prefix, 6);
    const k = keysOf(prefix, 'sales');
    const c = consumer<Stock>({
      prefix,
      maxDeliveries: 2,
      initialState: { stock: 0, seen: 0 },
      handler: (m, tx) => {
        tx.state.seen += 1;
        tx.publish('alerts', { i: m.fields.i! });
        if (m.fields.i === '3') throw new Error('no stock for 3');
      },
    });
    await c.start();
    await until(async () => (await entries(client, k.out('alerts'))).length === 5 && c.state?.seen === 5, 'all handled');
    await c.stop();
    const alerts = (await entries(client, k.out('alerts'))).map((e) => e.fields.i);
    expect(alerts).toEqual(['0', '1', '2', '4', '5']);
    expect(c.state).toEqual({ stock: 0, seen: 5 });
    const dead = await entries(client, k.dead);
    expect(dead.map((e) => JSON.parse(e.fields.fields!).i)).toEqual(['3']);
  });

  it('does not leave the state mutation of a failed first message behind', async () => {
    const prefix = uniquePrefix();
    await publish(prefix, 3);
    const calls: string[] = [];
    const c = consumer<Stock>({
      prefix,
      initialState: { stock: 10, seen: 0 },
      handler: (m, tx) => {
        calls.push(`${m.fields.i}#${m.deliveries}`);
        tx.state.stock -= 1;
        tx.state.seen += 1;
        if (m.fields.i === '0' && m.deliveries === 1) throw new Error('first attempt fails');
      },
    });
    await c.start();
    await until(() => c.state?.seen === 3, 'three committed');
    await c.stop();
    expect(calls).toEqual(['0#1', '0#2', '1#1', '2#1']);
    expect(c.state).toEqual({ stock: 7, seen: 3 });
  });

  it('retries a failing message with backoff, counting its deliveries, then goes on in order', async () => {
    const prefix = uniquePrefix();
    await publish(prefix, 4);
    const calls: string[] = [];
    const errors: unknown[] = [];
    const c = consumer<Stock>({
      prefix,
      batchSize: 10,
      retryDelayMs: 5,
      maxDeliveries: 5,
      initialState: { stock: 0, seen: 0 },
      onError: (e) => errors.push(e),
      handler: (m, tx) => {
        calls.push(`${m.fields.i}#${m.deliveries}`);
        if (m.fields.i === '1' && m.deliveries < 3) throw new Error(`flaky ${m.deliveries}`);
        tx.state.seen += 1;
      },
    });
    await c.start();
    await until(() => c.state?.seen === 4, 'all committed');
    await c.stop();
    expect(calls).toEqual(['0#1', '1#1', '1#2', '1#3', '2#1', '3#1']);
    expect(errors.map((e) => (e as Error).message)).toEqual(['flaky 1', 'flaky 2']);
  });

  it('keeps one active processor per group: a second instance stands by and handles nothing', async () => {
    const prefix = uniquePrefix();
    const byA: string[] = [];
    const byB: string[] = [];
    const a = consumer<Stock>({ prefix, initialState: { stock: 0, seen: 0 }, handler: (m, tx) => void (byA.push(m.id), (tx.state.seen += 1)) });
    const b = consumer<Stock>({ prefix, initialState: { stock: 0, seen: 0 }, handler: (m, tx) => void (byB.push(m.id), (tx.state.seen += 1)) });
    await a.start();
    await b.start();
    expect([a.status, b.status]).toEqual(['active', 'standby']);
    await publish(prefix, 12);
    await until(() => a.state?.seen === 12, 'a handled everything');
    expect(byA).toHaveLength(12);
    expect(byB).toEqual([]);
    expect(b.status).toBe('standby');
  });

  it('hands the group to a standby at once when the active instance stops (no wait for the lease)', async () => {
    const prefix = uniquePrefix();
    const options = { prefix, leaseMs: 120_000, initialState: { stock: 0, seen: 0 } };
    const a = consumer<Stock>({ ...options, handler: (_m, tx) => void (tx.state.seen += 1) });
    const b = consumer<Stock>({ ...options, handler: (_m, tx) => void (tx.state.seen += 1) });
    await a.start();
    await b.start();
    await publish(prefix, 3);
    await until(() => a.state?.seen === 3, 'a handled three');
    await a.stop();
    // The lease runs for two minutes: only the release wake-up can make b active this soon.
    await until(() => b.status === 'active', 'b took over', 10_000);
    await publish(prefix, 2, 3);
    await until(() => b.state?.seen === 5, 'b continued from a’s state', 10_000);
  });

  it('stop waits for the message in hand, commits it and gives the lease back', async () => {
    const prefix = uniquePrefix();
    await publish(prefix, 3);
    const gate = deferred();
    const entered = deferred();
    const handled: string[] = [];
    const c = consumer<Stock>({
      prefix,
      batchSize: 1,
      initialState: { stock: 0, seen: 0 },
      handler: async (m, tx) => {
        if (m.fields.i === '1') {
          entered.resolve();
          await gate.promise;
        }
        handled.push(m.fields.i!);
        tx.state.seen += 1;
      },
    });
    await c.start();
    await within(entered.promise, 'handler of message 1 entered');
    const stopping = c.stop();
    expect(c.status).toBe('stopping');
    gate.resolve();
    await within(stopping, 'stop');
    expect(c.status).toBe('stopped');
    expect(handled).toEqual(['0', '1']);
    const stored = await groupHash(client, keysOf(prefix, 'sales').group);
    expect(JSON.parse(stored.state!)).toEqual({ stock: 0, seen: 2 });
    expect(stored.owner).toBeUndefined();
    const after: string[] = [];
    const next = consumer<Stock>({ prefix, initialState: { stock: 0, seen: 0 }, handler: (m) => void after.push(m.fields.i!) });
    await next.start();
    await until(() => after.length === 1, 'the rest handled by the next instance');
    expect(after).toEqual(['2']);
  });

  it('stores the state with the codec given', async () => {
    const prefix = uniquePrefix();
    await publish(prefix, 2);
    const codec = {
      encode: (s: Stock) => `v1:${s.stock}:${s.seen}`,
      decode: (text: string): Stock => {
        const [, stock, seen] = text.split(':');
        return { stock: Number(stock), seen: Number(seen) };
      },
    };
    const c = consumer<Stock>({ prefix, codec, initialState: { stock: 9, seen: 0 }, handler: (_m, tx) => void ((tx.state.seen += 1), (tx.state.stock -= 1)) });
    await c.start();
    await until(() => c.state?.seen === 2, 'two committed');
    await c.stop();
    expect((await groupHash(client, keysOf(prefix, 'sales').group)).state).toBe('v1:7:2');
    const again = consumer<Stock>({ prefix, codec, initialState: { stock: 0, seen: 0 }, handler: () => undefined });
    await again.start();
    expect(again.state).toEqual({ stock: 7, seen: 2 });
  });

  it('refuses to start with STREAM_CODEC when the stored state cannot be decoded', async () => {
    const prefix = uniquePrefix();
    const k = keysOf(prefix, 'sales');
    await client.hSet(k.group, { mode: 'stateful', state: 'not json' });
    const c = consumer<Stock>({ prefix, initialState: { stock: 0, seen: 0 }, handler: () => undefined });
    await expect(c.start()).rejects.toMatchObject({ code: 'STREAM_CODEC' });
    expect((await groupHash(client, k.group)).owner).toBeUndefined();
  });

  it('rejects a group that already runs in competing mode with STREAM_MODE_CONFLICT', async () => {
    const prefix = uniquePrefix();
    const competing = consumer({ prefix, mode: 'competing', handler: () => undefined });
    await competing.start();
    const stateful = consumer<Stock>({ prefix, initialState: { stock: 0, seen: 0 }, handler: () => undefined });
    const error = await stateful.start().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'STREAM_MODE_CONFLICT', name: 'StreamModeConflictError' });
  });

  it('fails a publish to a stream of another space with STREAM_CROSS_SLOT, and dead-letters the message', async () => {
    const prefix = uniquePrefix();
    await publish(prefix, 1);
    const errors: string[] = [];
    const c = consumer<Stock>({
      prefix,
      maxDeliveries: 1,
      initialState: { stock: 0, seen: 0 },
      onError: (e) => errors.push((e as { code: string }).code),
      handler: (m, tx) => tx.publish({ space: 'elsewhere', stream: 'alerts' }, { i: m.fields.i! }),
    });
    await c.start();
    const k = keysOf(prefix, 'sales');
    await until(async () => (await entries(client, k.dead)).length === 1, 'dead-lettered');
    expect(errors).toEqual(['STREAM_CROSS_SLOT']);
    expect((await entries(client, k.dead))[0]!.fields.error).toMatch(/^StreamCrossSlotError: /);
  });

  it('works the same on a RESP2 client', async () => {
    const resp2 = await connect(target, { RESP: 2 });
    try {
      const prefix = uniquePrefix();
      const ids = await publish(prefix, 5);
      const order: string[] = [];
      const c = consumer<Stock>(
        { prefix, batchSize: 2, initialState: { stock: 5, seen: 0 }, handler: (m, tx) => void (order.push(m.id), (tx.state.stock -= 1), tx.publish('alerts', { i: m.fields.i! })) },
        resp2,
      );
      await c.start();
      await until(() => c.state?.stock === 0, 'all five committed');
      await c.stop();
      expect(order).toEqual(ids);
      expect((await entries(client, keysOf(prefix, 'sales').out('alerts'))).map((e) => e.fields.i)).toEqual(['0', '1', '2', '3', '4']);
    } finally {
      await WakeBus.close(resp2);
      await resp2.close();
    }
  });

  it('waits for new messages on its own connection without stalling commands on the shared client', async () => {
    const prefix = uniquePrefix();
    const handled: string[] = [];
    const c = consumer<Stock>({ prefix, blockMs: 60_000, initialState: { stock: 0, seen: 0 }, handler: (m) => void handled.push(m.fields.i!) });
    await c.start();
    // Let the consumer reach its blocking read, then use the shared client meanwhile.
    await new Promise((r) => setTimeout(r, 200));
    const producer = new StreamProducer(client, { prefix });
    await within(
      Promise.all(Array.from({ length: 20 }, (_, i) => producer.publish('other', { i: String(i) }))),
      'shared client commands while the consumer blocks',
      5_000,
    );
    await publish(prefix, 1);
    await until(() => handled.length === 1, 'woken by the new message before blockMs', 10_000);
    expect(handled).toEqual(['0']);
  });
});
