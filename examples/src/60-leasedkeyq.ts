import { WakeBus } from '@x/redis-core';
import { InvalidLeaseError, KeyAlreadyInFlightError, LeasedKeyQueue } from '@x/leasedkeyq';
import type { Example } from './demo';

type Task = { action: string; attempt?: number };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// A keyed FIFO queue shared by two "processes" (two clients): FIFO gets, a keyed take, updates
// while in flight, a blocked consumer woken by a put, a lease that runs out, and close().
const demo: Example = async (client) => {
  const name = `tasks-${Date.now()}`;
  const worker = client.duplicate();
  worker.on('error', () => undefined);
  await worker.connect();
  const producer = new LeasedKeyQueue<Task>(client, name, { prefix: 'demo', defaultLeaseTimeoutMs: 5_000 });
  const consumer = new LeasedKeyQueue<Task>(worker, name, { prefix: 'demo', defaultLeaseTimeoutMs: 5_000 });
  try {
    for (const key of ['task-1', 'task-2', 'task-3']) await producer.put(key, { action: `process ${key}` });
    console.log(`queued: ${(await producer.availableKeys()).join(', ')}`);

    const first = await consumer.get({ timeoutMs: 1_000 });
    console.log(`got ${first.key} (fence ${first.lease.fence}): ${first.value.action}`);
    console.log(`producer updates ${first.key} while it is in flight: ${await producer.put(first.key, { action: 'process again', attempt: 2 })}`);
    try {
      await producer.put(first.key, { action: 'x' }, { ifInFlight: 'reject' });
    } catch (error) {
      if (error instanceof KeyAlreadyInFlightError) console.log(`ifInFlight 'reject' refuses: [${error.code}]`);
    }
    await consumer.ack(first.lease);
    console.log(`acked ${first.key}; its update is a new item at the back: ${(await producer.availableKeys()).join(', ')}`);

    const third = await consumer.take('task-3', { timeoutMs: 1_000 });
    console.log(`took ${third.key} by key; it fails, so it goes back to the front`);
    await consumer.release(third.lease, { requeueFront: true });
    console.log(`queue now: ${(await producer.availableKeys()).join(', ')}`);

    for (let i = 0; i < 3; i++) await consumer.ack((await consumer.get()).lease);
    const waiting = consumer.get({ timeoutMs: 5_000 });
    await sleep(100);
    console.log(`a consumer waits on the empty queue (no polling); the producer puts task-4`);
    await producer.put('task-4', { action: 'late arrival' });
    const late = await waiting;
    console.log(`the waiting consumer got ${late.key}`);

    console.log(`it takes too long: its ${300} ms lease runs out on the server's clock...`);
    await consumer.release(late.lease);
    const slow = await consumer.get({ leaseTimeoutMs: 300 });
    await sleep(400);
    const again = await producer.get({ timeoutMs: 1_000 });
    console.log(`${again.key} went back to the front and was leased again (fence ${slow.lease.fence} -> ${again.lease.fence})`);
    try {
      await consumer.ack(slow.lease);
    } catch (error) {
      if (error instanceof InvalidLeaseError) console.log(`the slow consumer's ack is refused: [${error.code}]`);
    }
    await producer.close();
    console.log(`producer closed: its lease went back, ${await consumer.size()} item available again`);
    await consumer.ack((await consumer.get()).lease);
  } finally {
    await consumer.close();
    await producer.close();
    for await (const keys of client.scanIterator({ MATCH: `demo:leasedkeyq:{${name}}:*` })) if (keys.length) await client.del(keys);
    await WakeBus.close(worker);
    await worker.close();
  }
};
export default demo;
