import { WakeBus, type RedisClientLike } from '@x/redis-core';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { StreamConsumer, StreamProducer, type StreamMode } from '../src';
import { entries, keysOf, until } from './helpers';

/**
 * A client whose every third script call runs on the server but loses its reply, as when the
 * connection breaks after the command was written: the caller cannot know it ran.
 */
function lossy(client: TestClient): { client: RedisClientLike; lost: () => number } {
  let calls = 0;
  let lost = 0;
  const wrap =
    (call: (...args: any[]) => Promise<unknown>) =>
    async (...args: any[]): Promise<unknown> => {
      const reply = await call(...args);
      if (++calls % 3 === 0) {
        lost += 1;
        throw new Error('Socket closed unexpectedly');
      }
      return reply;
    };
  const proxy = new Proxy(client, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop === 'evalSha' || prop === 'eval') return wrap((value as (...a: any[]) => Promise<unknown>).bind(target));
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { client: proxy as unknown as RedisClientLike, lost: () => lost };
}

describe.each(TARGETS)('lost replies on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  it.each(['stateful', 'competing'] as StreamMode[])(
    '%s: scripts whose replies were lost are resent, answered like the original, and every effect applies exactly once',
    async (mode) => {
      const prefix = uniquePrefix();
      const k = keysOf(prefix, 'sales');
      const producer = new StreamProducer(client, { prefix });
      for (let i = 0; i < 60; i++) await producer.publish('sales', { i: String(i) });
      const flaky = lossy(client);
      const errors: string[] = [];
      const consumer = new StreamConsumer<{ sum: number } | null>(flaky.client, {
        prefix,
        stream: 'sales',
        group: 'g',
        mode,
        ...(mode === 'stateful' ? { initialState: { sum: 0 } } : {}),
        batchSize: 4,
        blockMs: 100,
        onError: (e) => errors.push((e as { code?: string }).code ?? String(e)),
        handler: (m, tx) => {
          if (tx.state) tx.state.sum += Number(m.fields.i);
          tx.publish('out', { i: m.fields.i! });
        },
      });
      await consumer.start();
      await until(
        async () => (await client.xLen(k.out('out'))) >= 60 && ((await client.xPending(k.stream, 'g')) as { pending: number }).pending === 0,
        'all sixty committed',
      );
      await consumer.stop();
      const out = (await entries(client, k.out('out'))).map((e) => Number(e.fields.i));
      if (mode === 'stateful') {
        expect(out).toEqual(Array.from({ length: 60 }, (_, i) => i));
        expect(JSON.parse((await client.hGet(k.group, 'state'))!)).toEqual({ sum: (59 * 60) / 2 });
      } else {
        expect(out.sort((a, b) => a - b)).toEqual(Array.from({ length: 60 }, (_, i) => i));
      }
      expect(flaky.lost()).toBeGreaterThan(3);
      // A resend is answered like the lost original: never refused as fenced or lost.
      expect(errors).toEqual([]);
    },
  );
});
