import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { WakeBus, keyspace } from '@x/redis-core';
import { IdempotencyStore, InvalidArgumentError, ReplayedError } from '../src';
import { adminClient, keysUnder, until } from './helpers';

describe.each(TARGETS)('IdempotencyStore.inspect on %s', (target) => {
  let client: TestClient;
  let admin: TestClient;
  beforeAll(async () => {
    client = await connect(target);
    admin = await adminClient(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
    await admin.close();
  });

  it('tells absent, running, completed and failed apart', async () => {
    const prefix = uniquePrefix();
    const store = new IdempotencyStore(client, { prefix, ttlMs: 60_000 });
    expect(await store.inspect('k')).toEqual({ status: 'absent' });
    const claim = await store.begin('k');
    if (claim.status !== 'acquired') throw new Error('expected a claim');
    const running = await store.inspect('k');
    expect(running).toMatchObject({ status: 'running' });
    expect(running.status === 'running' && running.retryAfterMs > 0 && running.retryAfterMs <= 30_000).toBe(true);
    await store.complete('k', claim.token, { id: 1, at: new Date(0) });
    const done = await store.inspect<{ id: number; at: Date }>('k');
    expect(done).toMatchObject({ status: 'completed', result: { id: 1, at: new Date(0) } });
    expect(done.status === 'completed' && done.expiresInMs > 0 && done.expiresInMs <= 60_000).toBe(true);

    await store.run('e', () => Promise.reject(Object.assign(new Error('declined'), { code: 'CARD_DECLINED' })), { cacheErrors: true }).catch(() => undefined);
    const failed = await store.inspect('e');
    expect(failed.status).toBe('failed');
    if (failed.status !== 'failed') return;
    expect(failed.error).toBeInstanceOf(ReplayedError);
    expect(failed.error).toMatchObject({ message: 'declined', code: 'CARD_DECLINED' });
  });

  it('writes nothing: no record for an absent key, no renewal or retention change for a present one', async () => {
    const prefix = uniquePrefix();
    const store = new IdempotencyStore(client, { prefix, leaseMs: 300 });
    await store.inspect('nothing');
    expect(await keysUnder(target, prefix)).toEqual([]);

    const claim = await store.begin('lapsing', { keepAlive: false });
    if (claim.status !== 'acquired') throw new Error('expected a claim');
    const record = keyspace(prefix, 'idempotency', 'lapsing').key('record');
    const before = await admin.hGetAll(record);
    expect((await store.inspect('lapsing')).status).toBe('running');
    expect(await admin.hGetAll(record)).toEqual(before);
    // A lapsed claim reads as absent, and inspecting it does not free or claim it.
    await until(async () => (await store.inspect('lapsing')).status === 'absent');
    expect(await admin.hGetAll(record)).toEqual(before);
    expect((await store.begin('lapsing')).status).toBe('acquired');
  });

  it('refuses a bad key with InvalidArgumentError', async () => {
    const store = new IdempotencyStore(client, { prefix: uniquePrefix() });
    await expect(store.inspect('')).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
