import { InsufficientQuotaError, Quota } from '@x/quota';
import type { Example } from './demo';

// Prepaid credits shared by many workers: exact, never below zero, with reservations that expire
// when a worker dies, chunk leases for hot resources, and an in-process fast path.
const demo: Example = async (client) => {
  const quota = new Quota(client, { prefix: 'demo' });
  const wallet = `wallet:${Date.now()}`;
  try {
    const deposit = await quota.topUp(wallet, 100, { idempotencyKey: 'deposit-1' });
    const again = await quota.topUp(wallet, 100, { idempotencyKey: 'deposit-1' });
    console.log(`topUp 100 twice with one idempotency key: available ${again.available} (same operation ${again.operationId === deposit.operationId})`);

    const spend = await quota.tryConsume(wallet, 30);
    const tooMuch = await quota.tryConsume(wallet, 500);
    console.log(`tryConsume 30 -> applied ${spend.applied}, ${spend.remaining} left; tryConsume 500 -> applied ${tooMuch.applied}`);

    const hold = await quota.reserve(wallet, 20, { ttlMs: 30_000 });
    const committed = await quota.commit(wallet, hold.reservationId, { amount: 15 });
    console.log(`reserve 20, commit 15 of it: the other 5 went back, ${committed.remaining} available`);

    await quota.reserve(wallet, 10, { ttlMs: 100 }); // a worker that dies before committing
    console.log(`an abandoned hold of 10: reserved ${(await quota.getState(wallet)).reserved}`);
    await new Promise((r) => setTimeout(r, 150));
    console.log(`after its TTL the next call reclaims it: reserved ${(await quota.getState(wallet)).reserved}`);

    try {
      await quota.reserve(wallet, 1_000);
    } catch (error) {
      if (error instanceof InsufficientQuotaError) console.log(`reserve 1000 -> ${error.code}: ${error.message}`);
      else throw error;
    }

    const lease = await quota.allocateChunk(wallet, 20, { ownerId: 'worker-a', ttlMs: 10_000 });
    await quota.consumeChunk(wallet, lease.leaseId, 7, { ownerId: 'worker-a', operationId: 'job-1' });
    await quota.consumeChunk(wallet, lease.leaseId, 7, { ownerId: 'worker-a', operationId: 'job-1' }); // a retry: no double spend
    const released = await quota.releaseChunk(wallet, lease.leaseId, { ownerId: 'worker-a' });
    console.log(`chunk of 20: spent 7 (retried once), gave back ${released.remaining} on release`);

    await quota.topUp(wallet, 1_000_000);
    const consumer = quota.localConsumer(wallet, { chunkSize: 50_000 });
    await consumer.consume(1);
    const started = performance.now();
    let served = 1;
    for (let i = 0; i < 200_000; i++) if (await consumer.consume(1)) served += 1;
    const ms = performance.now() - started;
    await consumer.close();
    console.log(`local consumer: ${served} units handed out from memory at ${Math.round(200_000 / (ms / 1000)).toLocaleString('en')} per second`);

    const state = await quota.getState(wallet);
    console.log(
      `final: available ${state.available} + reserved ${state.reserved} + leased ${state.leased} + consumed ${state.consumed} = supplied ${state.supplied}`,
    );
  } finally {
    const keys = await client.keys(`demo:quota:{${wallet}}:*`);
    if (keys.length > 0) await client.del(keys);
  }
};
export default demo;
