import { WakeBus } from '@x/redis-core';
import { TARGETS, recordChannels } from '@x/testing';
import { connect, freshQueue, type TestClient } from './support';

const OPERATIONS = ['put', 'get', 'ack', 'release', 'extend'].map((op) => `x:leasedkeyq:${op}`);

describe.each(TARGETS)('leasedkeyq tracing channels on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  it('publishes put, get, extend, release and ack with the key, fence and deliveries, and a dead letter', async () => {
    const { q } = freshQueue<{ n: number }>(client, { maxDeliveries: 2 });
    const rec = recordChannels({ operations: OPERATIONS, events: ['x:leasedkeyq:dead-lettered'] });
    try {
      await q.put('job-1', { n: 1 });
      const one = await q.get({ timeoutMs: 0 });
      await q.ack(one.lease);
      await q.put('job-2', { n: 2 });
      const first = await q.take('job-2', { timeoutMs: 1_000 });
      await q.extend(first.lease, 10_000);
      await q.release(first.lease, { error: new Error('flaky') });
      const second = await q.take('job-2', { timeoutMs: 1_000 });
      expect(await q.release(second.lease, { error: new Error('flaky again') })).toBe('dead-lettered');
      await expect(q.get({ timeoutMs: 20 })).rejects.toMatchObject({ code: 'QUEUE_TIMEOUT' });

      const name = q.name;
      expect(rec.ended.map(({ channel, context: c }) => [channel, c.resource, c.key, c.outcome, c.status, c.deliveries])).toEqual([
        ['x:leasedkeyq:put', name, 'job-1', 'ok', 'added', undefined],
        ['x:leasedkeyq:get', name, 'job-1', 'ok', undefined, 1],
        ['x:leasedkeyq:ack', name, 'job-1', 'ok', undefined, 1],
        ['x:leasedkeyq:put', name, 'job-2', 'ok', 'added', undefined],
        ['x:leasedkeyq:get', name, 'job-2', 'ok', undefined, 1],
        ['x:leasedkeyq:extend', name, 'job-2', 'ok', undefined, undefined],
        ['x:leasedkeyq:release', name, 'job-2', 'ok', 'released', 1],
        ['x:leasedkeyq:get', name, 'job-2', 'ok', undefined, 2],
        ['x:leasedkeyq:release', name, 'job-2', 'ok', 'dead-lettered', 2],
        ['x:leasedkeyq:get', name, undefined, 'timed-out', undefined, undefined],
      ]);
      expect(rec.ended[1]!.context.fence).toEqual(expect.any(Number));
      expect(rec.events.map((e) => e.context)).toEqual([
        { package: 'leasedkeyq', event: 'dead-lettered', resource: name, key: 'job-2', deliveries: 2, error: expect.stringContaining('flaky again') },
      ]);
    } finally {
      rec.stop();
      await q.close();
    }
  });
});
