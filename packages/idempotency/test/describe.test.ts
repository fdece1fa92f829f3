import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { WakeBus } from '@x/redis-core';
import { IdempotencyStore, InvalidArgumentError, describe as describeKey } from '../src';

describe.each(TARGETS)('describe (idempotency) on %s', (target) => {
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

  it('reports a claim in progress and a completed record, and lists the keys', async () => {
    const store = new IdempotencyStore(client, { prefix });
    const claim = await store.begin('order-7');
    expect(claim.status).toBe('acquired');
    const running = (await describeKey(client, 'order-7', { prefix }))!;
    expect(running).toMatchObject({ kind: 'idempotency', name: 'order-7', state: 'in_progress', fingerprinted: false });
    expect(running.leaseUntil).toBeGreaterThan(running.now);

    await store.set('order-8', { ok: true });
    const done = (await describeKey(client, 'order-8', { prefix }))!;
    expect(done).toMatchObject({ state: 'completed', leaseUntil: null });
    expect(done.valueBytes).toBeGreaterThan(0);
    expect(done.expiresAt).toBeGreaterThan(done.now);
    expect(await describeKey.list(client, { prefix })).toEqual([{ name: 'order-7' }, { name: 'order-8' }]);
  });

  it('returns null for an unknown key, and rejects a bad name', async () => {
    expect(await describeKey(client, 'none', { prefix })).toBeNull();
    await expect(describeKey(client, '', { prefix })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
