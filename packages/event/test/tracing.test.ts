import { TARGETS, connect, recordChannels, uniquePrefix, type TestClient } from '@x/testing';
import { WakeBus } from '@x/redis-core';
import { AutoResetEvent, CountDownLatch, ManualResetEvent } from '../src';

const OPERATIONS = ['set', 'reset', 'wait', 'countDown'].map((op) => `x:event:${op}`);

describe.each(TARGETS)('event tracing channels on %s', (target) => {
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

  it('publishes set, reset, wait and countDown with the kind, the script, the outcome and the wait', async () => {
    const rec = recordChannels({ operations: OPERATIONS });
    try {
      const auto = new AutoResetEvent(client, 'jobs', { prefix });
      await auto.set();
      await auto.wait({ timeoutMs: 1_000 });
      const manual = new ManualResetEvent(client, 'gate', { prefix });
      await manual.reset();
      await expect(manual.wait({ timeoutMs: 20 })).rejects.toMatchObject({ code: 'EVENT_TIMEOUT' });
      const latch = new CountDownLatch(client, 'shards', { prefix, count: 3 });
      await latch.countDown(2);

      expect(rec.ended.map(({ channel, context: c }) => [channel, c.resource, c.kind, c.outcome])).toEqual([
        ['x:event:set', 'jobs', 'auto-reset', 'ok'],
        ['x:event:wait', 'jobs', 'auto-reset', 'ok'],
        ['x:event:reset', 'gate', 'manual-reset', 'ok'],
        ['x:event:wait', 'gate', 'manual-reset', 'timed-out'],
        ['x:event:countDown', 'shards', 'latch', 'ok'],
      ]);
      const [set, wait, , timedOut, countDown] = rec.ended.map((r) => r.context);
      expect(set!.script).toBe('auto-reset-event.set');
      expect(wait!.waitMs).toBe(wait!.durationMs);
      expect(timedOut!.waitMs).toBeGreaterThan(0);
      expect(countDown!.count).toBe(1);
    } finally {
      rec.stop();
    }
  });
});
