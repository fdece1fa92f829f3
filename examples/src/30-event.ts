import { AutoResetEvent, CountDownLatch, EventTimeoutError, ManualResetEvent } from '@x/event';
import type { Example } from './demo';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// An auto-reset event lets exactly one waiter through per set(); a manual-reset event lets
// everyone through until reset(); a latch opens after N count-downs.
const demo: Example = async (client) => {
  const run = `${Date.now()}`;

  const done = new AutoResetEvent(client, `task-done-${run}`, { ttlMs: 60_000 });
  const consumers = ['A', 'B', 'C'].map(async (who, i) => {
    await sleep(i * 5); // FIFO: A first
    await done.wait({ timeoutMs: 5_000 });
    console.log(`auto-reset: consumer ${who} took a signal`);
  });
  await sleep(50);
  for (let i = 0; i < 3; i++) console.log(`auto-reset: set() woke a waiter: ${await done.set()}`);
  await Promise.all(consumers);
  await done.set();
  console.log(`auto-reset: a set() with nobody waiting is kept: pending() = ${await done.pending()}`);
  await done.wait({ timeoutMs: 0 });
  try {
    await done.wait({ timeoutMs: 100 });
  } catch (error) {
    if (error instanceof EventTimeoutError) console.log(`auto-reset: the next wait times out: [${error.code}]`);
    else throw error;
  }

  const ready = new ManualResetEvent(client, `cache-warm-${run}`, { ttlMs: 60_000 });
  const readers = [1, 2, 3].map(async (n) => {
    await ready.wait({ timeoutMs: 5_000 });
    console.log(`manual-reset: reader ${n} woke`);
  });
  await sleep(50);
  await ready.set();
  await ready.reset(); // a pulse: readers that were waiting still return
  await Promise.all(readers);
  console.log(`manual-reset: after set()+reset(), isSet() = ${await ready.isSet()}`);

  const latch = new CountDownLatch(client, `shards-${run}`, { count: 3, ttlMs: 60_000 });
  const joined = new CountDownLatch(client, `shards-${run}`, { count: 99 });
  const all = latch.wait({ timeoutMs: 5_000 }).then(() => console.log('latch: open, every waiter returned'));
  for (let shard = 1; shard <= 3; shard++) console.log(`latch: shard ${shard} done, ${await joined.countDown()} to go`);
  await all;
};
export default demo;
