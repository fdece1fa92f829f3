import { Lock } from '@x/lock';
import { Semaphore } from '@x/semaphore';
import { LeasedKeyQueue } from '@x/leasedkeyq';
import { StreamProducer } from '@x/streams';
import { Quota } from '@x/quota';
import type { TestClient } from '@x/testing';

/** A name a page must show as text. */
export const HOSTILE = '<img src=x onerror=alert(1)> "quoted" \'single\' ünïcødé 🔒';

/**
 * What a person opens the page for: a held lock (and one with a hostile name), a full semaphore
 * with a waiter, a queue with an item in flight, a stream with a dead letter, a quota.
 */
export async function busyRedis(client: TestClient, prefix: string) {
  const lock = await new Lock(client, 'orders', { prefix }).acquire();
  const hostile = await new Lock(client, HOSTILE, { prefix }).acquire();
  const pool = await Semaphore.create(client, 'gpu', { limit: 1, prefix });
  const permit = await pool.acquire();
  const waiter = pool.acquire({ timeoutMs: 60_000 }).then((p) => p.release(), () => undefined);
  const q = new LeasedKeyQueue<string>(client, 'jobs', { prefix });
  for (const k of ['a', 'b', 'c']) await q.put(k, k);
  const item = await q.get({ leaseTimeoutMs: 60_000 });
  const producer = new StreamProducer(client, { prefix });
  const id = await producer.publish('pay', { amount: '5' });
  // A dead letter as the consumer writes it after maxDeliveries.
  await client.xAdd(`${prefix}:streams:{default}:s:pay:dead`, '*', {
    id, stream: 'pay', group: 'billing', error: 'TypeError: card declined', deliveries: '3', fields: JSON.stringify({ amount: '5' }),
  });
  await new Quota(client, { prefix }).topUp('wallet:1', 100);
  return {
    lock, hostile, permit, item, q,
    async release() {
      await lock.release().catch(() => undefined);
      await hostile.release().catch(() => undefined);
      await permit.release().catch(() => undefined);
      await waiter;
      await q.ack(item.lease).catch(() => undefined);
    },
  };
}
