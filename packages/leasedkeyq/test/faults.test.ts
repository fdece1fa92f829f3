import { loseNextReply, settle, startFaultyRedis, uniquePrefix, until, type FaultyRedis } from '@x/testing';
import { WakeBus } from '@x/redis-core';
import { createClient } from 'redis';
import { LeasedKeyQueue, RedisUnavailableError } from '../src';

// Faults are injected into a server of this file's own: refusing connections or pausing the
// run's shared server would fail the suites running beside it.
describe('LeasedKeyQueue through server faults', () => {
  let redis: FaultyRedis;
  const clients: Array<Awaited<ReturnType<typeof connectTo>>> = [];
  beforeAll(async () => {
    redis = await startFaultyRedis();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) {
      await WakeBus.close(c);
      if (c.isOpen) c.destroy();
    }
  });
  afterAll(async () => {
    await redis.stop();
  });

  async function clientNamed(name: string) {
    const c = await connectTo(redis.url, name);
    clients.push(c);
    return c;
  }

  async function queues() {
    const name = uniquePrefix();
    const consumerClient = await clientNamed('consumer');
    return {
      consumerClient,
      producer: new LeasedKeyQueue<string>(await clientNamed('producer'), name),
      consumer: new LeasedKeyQueue<string>(consumerClient, name),
    };
  }

  it('get: a kill while the woken getter takes its item does not reject the wait', async () => {
    const { producer, consumer, consumerClient } = await queues();
    const getting = settle(consumer.get({ timeoutMs: 20_000 }));
    // Listening as a blocked getter: the put wakes it.
    await until(() => WakeBus.for(consumerClient).listenerCount === 1);
    const cut = redis.cutNextCall(consumerClient, { name: 'consumer' });
    await producer.put('a', 'A');
    await cut;
    const got = await getting;
    expect(got.ok && got.value.key).toBe('a');
  });

  it('get: a resend after a lost reply returns the lease that attempt granted, not a second item', async () => {
    const { producer, consumer, consumerClient } = await queues();
    await producer.put('a', 'A');
    await producer.put('b', 'B');
    const lost = loseNextReply(consumerClient);
    const got = await consumer.get({ timeoutMs: 20_000 });
    await lost;
    expect(got.key).toBe('a');
    expect(await producer.availableKeys()).toEqual(['b']);
    expect(await producer.inflightKeys()).toEqual(['a']);
    await consumer.ack(got.lease);
  });

  it('take: a resend after a lost reply returns its own lease', async () => {
    const { producer, consumer, consumerClient } = await queues();
    await producer.put('a', 'A');
    const lost = loseNextReply(consumerClient);
    const got = await consumer.take('a', { timeoutMs: 20_000 });
    await lost;
    expect(got.value).toBe('A');
    await consumer.ack(got.lease);
    expect(await producer.size()).toBe(0);
  });

  it('ack: a resend after a lost reply resolves, and the item is gone', async () => {
    const { producer, consumer, consumerClient } = await queues();
    await producer.put('a', 'A');
    const { lease } = await consumer.get({ timeoutMs: 1_000 });
    const lost = loseNextReply(consumerClient);
    await consumer.ack(lease);
    await lost;
    expect(await producer.size()).toBe(0);
    expect(await producer.inflightSize()).toBe(0);
  });

  it('release: a release cut off in flight is sent again, and the item is back', async () => {
    const { producer, consumer, consumerClient } = await queues();
    await producer.put('a', 'A');
    const { lease } = await consumer.get({ timeoutMs: 1_000 });
    const cut = redis.cutNextCall(consumerClient, { name: 'consumer' });
    await consumer.release(lease);
    await cut;
    expect(await producer.availableKeys()).toEqual(['a']);
  });

  it('release: a resend after a lost reply resolves, and the item is back once', async () => {
    const { producer, consumer, consumerClient } = await queues();
    await producer.put('a', 'A');
    const { lease } = await consumer.get({ timeoutMs: 1_000 });
    const lost = loseNextReply(consumerClient);
    await consumer.release(lease);
    await lost;
    expect(await producer.availableKeys()).toEqual(['a']);
    expect(await producer.inflightSize()).toBe(0);
  });

  it('get: a getter whose connections are cut while new ones are refused gets the item once the server is back', async () => {
    const { producer, consumer, consumerClient } = await queues();
    const getting = settle(consumer.get({ timeoutMs: 20_000 }));
    await until(() => WakeBus.for(consumerClient).listenerCount === 1);
    const outage = await redis.outage(1_000, { name: 'consumer' });
    await producer.put('a', 'A');
    await outage.ended;
    const got = await getting;
    expect(got.ok && got.value.key).toBe('a');
  });

  it('put fails fast with RedisUnavailableError, the fault as its cause', async () => {
    const { producer } = await queues();
    const outage = await redis.outage(60_000, { name: 'producer' });
    try {
      const error = await producer.put('a', 'A').catch((e: unknown) => e);
      expect(RedisUnavailableError.isInstance(error)).toBe(true);
      expect((error as Error).cause).toBeInstanceOf(Error);
    } finally {
      await outage.end();
    }
  });
});

/** A client that reconnects quickly, named so that a fault can pick its connections. */
async function connectTo(url: string, name: string) {
  const c = createClient({ url, name, socket: { reconnectStrategy: () => 50 } });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}
