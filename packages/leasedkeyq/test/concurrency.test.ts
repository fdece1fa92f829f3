import { WakeBus } from '@x/redis-core';
import { TARGETS } from '@x/testing';
import { LeasedKeyQueue, QueueTimeoutError } from '../src';
import { connect, freshQueue, type TestClient } from './support';

describe.each(TARGETS)('LeasedKeyQueue concurrency on %s', (target) => {
  const clients: TestClient[] = [];
  beforeAll(async () => {
    for (let i = 0; i < 3; i++) clients.push(await connect(target));
  });
  afterAll(async () => {
    for (const client of clients) {
      await WakeBus.close(client);
      await client.close();
    }
  });

  /** The same queue opened on each of the three connections, as three processes would. */
  function sharedQueue() {
    const { prefix } = freshQueue(clients[0]!);
    return clients.map((client) => new LeasedKeyQueue<number>(client, 'q', { prefix }));
  }

  async function drain(q: LeasedKeyQueue<number>, seen: number[], idleMs = 300): Promise<void> {
    for (;;) {
      try {
        const { value, lease } = await q.get({ timeoutMs: idleMs });
        seen.push(value);
        await q.ack(lease);
      } catch (error) {
        if (error instanceof QueueTimeoutError) return;
        throw error;
      }
    }
  }

  it('keeps every item of concurrent producers', async () => {
    const [a, b, c] = sharedQueue();
    const produce = async (q: LeasedKeyQueue<number>, start: number) => {
      for (let i = start; i < start + 10; i++) await q.put(`key-${i}`, i);
    };
    await Promise.all([produce(a!, 0), produce(b!, 100), produce(c!, 200)]);
    expect(await a!.size()).toBe(30);
  });

  it('hands each item to exactly one of many concurrent consumers', async () => {
    const queues = sharedQueue();
    for (let i = 0; i < 60; i++) await queues[0]!.put(`key-${i}`, i);
    const seen: number[] = [];
    await Promise.all(queues.flatMap((q) => [drain(q, seen), drain(q, seen)]));
    expect(seen.sort((x, y) => x - y)).toEqual(Array.from({ length: 60 }, (_, i) => i));
  });

  it('delivers everything a producer puts while consumers wait and work', async () => {
    const [producer, ...consumers] = sharedQueue();
    const seen: number[] = [];
    const consuming = consumers.flatMap((q) => [drain(q!, seen, 1_000), drain(q!, seen, 1_000)]);
    for (let i = 0; i < 50; i++) await producer!.put(`task-${i}`, i);
    await Promise.all(consuming);
    expect(seen.sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('loses no item when consumers release some and ack others under contention', async () => {
    const queues = sharedQueue();
    const total = 40;
    const acked = new Set<number>();
    const released: number[] = [];
    const producing = (async () => {
      for (let i = 0; i < total; i++) await queues[0]!.put(`item-${i}`, i);
    })();
    const consume = async (q: LeasedKeyQueue<number>) => {
      while (acked.size < total) {
        try {
          const { value, lease } = await q.get({ timeoutMs: 500 });
          // Each odd item is released once before it is acked.
          if (value % 2 === 1 && !released.includes(value)) {
            released.push(value);
            await q.release(lease, { requeueFront: value % 4 === 1 });
          } else {
            expect(acked.has(value)).toBe(false);
            await q.ack(lease);
            acked.add(value);
          }
        } catch (error) {
          if (!(error instanceof QueueTimeoutError)) throw error;
        }
      }
    };
    await Promise.all([producing, ...queues.map(consume), ...queues.map(consume)]);
    expect([...acked].sort((x, y) => x - y)).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(released.length).toBe(total / 2);
    expect(await queues[0]!.size()).toBe(0);
    expect(await queues[0]!.inflightSize()).toBe(0);
  });

  it('hands a released item to the take waiting for it, once', async () => {
    const [a, b] = sharedQueue();
    await a!.put('key1', 100);
    const { lease } = await a!.get();
    const taking = b!.take('key1', { timeoutMs: 10_000 });
    await a!.release(lease);
    const taken = await taking;
    expect(taken.value).toBe(100);
    expect(await a!.size()).toBe(0);
    expect(await a!.inflightKeys()).toEqual(['key1']);
    await b!.ack(taken.lease);
  });
});
