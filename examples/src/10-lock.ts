import { WakeBus } from '@x/redis-core';
import { Lock, LockNotHeldError } from '@x/lock';
import type { Example } from './demo';

// Three workers take turns on one lock. Each grant carries a fence that only goes up, so a
// downstream store can refuse writes from a holder that lost its lease.
const demo: Example = async (client) => {
  const name = `report-${Date.now()}`;
  const workers = ['alpha', 'beta', 'gamma'].map(async (who, i) => {
    const lock = new Lock(client, name, { ttlMs: 5_000 });
    await new Promise((r) => setTimeout(r, i * 5)); // arrive in order: FIFO serves them in order
    await lock.withLock(async (held) => {
      console.log(`${who} holds the lock, fence ${held.fence}`);
      await new Promise((r) => setTimeout(r, 50));
    });
  });
  await Promise.all(workers);

  const lock = new Lock(client, name, { ttlMs: 200, autoExtend: false });
  const held = (await lock.tryAcquire())!;
  console.log(`took it without auto-renewal (ttl 200 ms); waiting for the lease to run out...`);
  await new Promise<void>((resolve) => held.signal.addEventListener('abort', () => resolve()));
  console.log(`signal aborted: ${(held.signal.reason as Error).message}`);
  try {
    await held.release();
  } catch (error) {
    if (error instanceof LockNotHeldError) console.log(`release reports the loss instead of hiding it: [${error.code}]`);
    else throw error;
  }
  await WakeBus.close(client);
};
export default demo;
