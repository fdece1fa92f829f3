import { TARGETS, connect, recordChannels, uniquePrefix, until, type TestClient } from '@x/testing';
import { WakeBus } from '@x/redis-core';
import { IdempotencyStore } from '../src';

const OPERATIONS = ['run', 'begin', 'complete', 'fail'].map((op) => `x:idempotency:${op}`);

describe.each(TARGETS)('idempotency tracing channels on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  it('publishes a first run as ok, a retry as replayed, and the claims of begin/complete/fail', async () => {
    const store = new IdempotencyStore(client, { prefix: uniquePrefix() });
    const rec = recordChannels({ operations: OPERATIONS, events: ['x:idempotency:lease-lost'] });
    try {
      await store.run('order:1', async () => ({ id: 1 }), { fingerprint: { sku: 'a' } });
      await store.run('order:1', async () => ({ id: 2 }), { fingerprint: { sku: 'a' } });
      await expect(store.run('order:1', async () => 3, { fingerprint: { sku: 'b' } })).rejects.toMatchObject({
        code: 'IDEMPOTENCY_FINGERPRINT_MISMATCH',
      });
      const claim = await store.begin('order:2');
      expect(claim.status).toBe('acquired');
      if (claim.status !== 'acquired') return;
      expect((await store.begin('order:2')).status).toBe('in_progress');
      await store.fail('order:2', claim.token);
      const again = await store.begin('order:2');
      if (again.status !== 'acquired') throw new Error('the failed claim should free the key');
      await store.complete('order:2', again.token, 'done');
      expect((await store.begin('order:2')).status).toBe('completed');

      expect(rec.ended.map(({ channel, context: c }) => [channel, c.resource, c.outcome, c.status])).toEqual([
        ['x:idempotency:run', 'order:1', 'ok', undefined],
        ['x:idempotency:run', 'order:1', 'replayed', undefined],
        ['x:idempotency:run', 'order:1', 'refused', undefined],
        ['x:idempotency:begin', 'order:2', 'granted', 'acquired'],
        ['x:idempotency:begin', 'order:2', 'refused', 'in_progress'],
        ['x:idempotency:fail', 'order:2', 'ok', undefined],
        ['x:idempotency:begin', 'order:2', 'granted', 'acquired'],
        ['x:idempotency:complete', 'order:2', 'ok', undefined],
        ['x:idempotency:begin', 'order:2', 'replayed', 'completed'],
      ]);
      expect(rec.ended[0]!.context.script).toBe('idempotency.begin');
      expect(rec.events).toEqual([]);
    } finally {
      rec.stop();
    }
  });

  it('publishes lease-lost when a claim that is not kept alive runs out', async () => {
    const store = new IdempotencyStore(client, { prefix: uniquePrefix(), leaseMs: 100 });
    const rec = recordChannels({ events: ['x:idempotency:lease-lost'] });
    try {
      const claim = await store.begin('slow', { keepAlive: false });
      if (claim.status !== 'acquired') throw new Error('expected a claim');
      await until(() => claim.signal.aborted);
      expect(rec.events.map((e) => [e.context.package, e.context.event, e.context.resource])).toEqual([['idempotency', 'lease-lost', 'slow']]);
    } finally {
      rec.stop();
    }
  });
});
