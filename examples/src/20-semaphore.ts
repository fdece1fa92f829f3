import { Semaphore, SemaphoreLimitMismatchError } from '@x/semaphore';
import type { Example } from './demo';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Five jobs share two permits: they run two at a time, in the order they asked. A big job that
// needs both permits is not overtaken by small ones queued behind it.
const demo: Example = async (client) => {
  const name = `gpu-${Date.now()}`;
  const pool = await Semaphore.create(client, name, { limit: 2, leaseTtlMs: 5_000 });
  const worker = await Semaphore.attach(client, name, { timeoutMs: 1_000 });
  console.log(`created "${name}"; an attached instance reads the limit: ${await worker.getLimit()}`);

  let running = 0;
  const job = async (id: string, permits: number, delayMs: number) => {
    await sleep(delayMs); // arrive in this order
    await using permit = await worker.acquire({ permits, timeoutMs: 5_000 });
    running += permits;
    console.log(`${id} runs with ${permits} permit(s), fence ${permit.fence}, ${running}/2 in use`);
    await sleep(60);
    running -= permits;
  };
  await Promise.all([job('job 1', 1, 0), job('job 2', 1, 5), job('big job', 2, 10), job('job 3', 1, 15), job('job 4', 1, 20)]);

  const blocker = (await pool.tryAcquire({ permits: 2 }))!;
  console.log(`tryAcquire while both permits are held: ${await pool.tryAcquire()}`);
  const waiting = worker.acquire({ timeoutMs: 5_000 });
  await sleep(50);
  console.log(`setLimit(3) returns the old limit ${await pool.setLimit(3)}; the waiter gets the new permit at once`);
  const third = await waiting;
  console.log(`holders now: ${(await pool.holders()).map((h) => `${h.permits}@fence ${h.fence}`).join(', ')}`);
  await Promise.all([blocker.release(), third.release()]);

  try {
    await Semaphore.create(client, name, { limit: 5 });
  } catch (error) {
    if (error instanceof SemaphoreLimitMismatchError) console.log(`create with another limit: [${error.code}] ${error.message}`);
    else throw error;
  }

  await worker.close();
  await pool.destroy();
  console.log(`destroyed; every key of "${name}" is gone`);
};
export default demo;
