import { TARGETS, connect, recordChannels, uniquePrefix, until, type TestClient } from '@x/testing';
import { WakeBus, keyspace } from '@x/redis-core';
import { Semaphore } from '../src';

const OPERATIONS = ['acquire', 'tryAcquire', 'release', 'extend'].map((op) => `x:semaphore:${op}`);
const EVENTS = ['x:semaphore:lease-lost', 'x:semaphore:hand-off'];

describe.each(TARGETS)('Semaphore tracing channels on %s', (target) => {
  let client: TestClient;
  let prefix: string;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });
  beforeEach(() => {
    prefix = uniquePrefix();
  });

  it('publishes acquires and releases with their permits, outcome and fence, and the hand-off to a waiter', async () => {
    const pool = await Semaphore.create(client, 'gpus', { limit: 3, prefix });
    const rec = recordChannels({ operations: OPERATIONS, events: EVENTS });
    try {
      const two = await pool.acquire({ permits: 2 });
      expect(await pool.tryAcquire({ permits: 2 })).toBeNull();
      const waiting = pool.acquire({ permits: 3, timeoutMs: 10_000 });
      const queue = keyspace(prefix, 'semaphore', 'gpus').key('queue');
      await until(async () => (await client.lLen(queue)) === 1);
      await two.release();
      const three = await waiting;
      await expect(pool.acquire({ timeoutMs: 30 })).rejects.toMatchObject({ code: 'SEMAPHORE_TIMEOUT' });
      await three.release();

      // The waiter is woken inside the release script, so its acquire may end before the release's reply.
      const seen = rec.ended.map(({ channel, context: c }) => [channel, c.resource, c.permits, c.outcome, c.fence]);
      expect(seen).toHaveLength(6);
      expect(seen).toEqual(expect.arrayContaining([
        ['x:semaphore:acquire', 'gpus', 2, 'granted', two.fence],
        ['x:semaphore:tryAcquire', 'gpus', 2, 'refused', undefined],
        ['x:semaphore:release', 'gpus', 2, 'ok', two.fence],
        ['x:semaphore:acquire', 'gpus', 3, 'waited', three.fence],
        ['x:semaphore:acquire', 'gpus', 1, 'timed-out', undefined],
        ['x:semaphore:release', 'gpus', 3, 'ok', three.fence],
      ]));
      expect(rec.ended.filter((r) => r.channel === 'x:semaphore:release').map((r) => r.context.handedOff)).toEqual([1, 0]);
      expect(rec.events.map((e) => [e.channel, e.context.resource, e.context.fence])).toEqual([['x:semaphore:hand-off', 'gpus', two.fence]]);
    } finally {
      rec.stop();
      await pool.close();
    }
  });
});
