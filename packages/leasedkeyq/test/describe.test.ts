import { TARGETS, connect, uniquePrefix, until, type TestClient } from '@x/testing';
import { WakeBus } from '@x/redis-core';
import { InvalidArgumentError, LeasedKeyQueue, describe as describeQueue } from '../src';

describe.each(TARGETS)('describe (leasedkeyq) on %s', (target) => {
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

  it('reports ready and in-flight items, the front keys and the leases, and lists the queues', async () => {
    const q = new LeasedKeyQueue<string>(client, 'jobs', { prefix });
    for (const k of ['a', 'b', 'c']) await q.put(k, k.toUpperCase());
    const item = await q.get({ leaseTimeoutMs: 60_000 });
    await new LeasedKeyQueue<string>(client, 'other', { prefix }).put('x', 'X');

    const state = (await describeQueue(client, 'jobs', { prefix }))!;
    expect(state).toMatchObject({ kind: 'leasedkeyq', name: 'jobs', ready: 2, inFlight: 1, waiters: 0, head: ['b', 'c'] });
    expect(state.leases).toEqual([{ key: 'a', fence: item.lease.fence, expiresAt: expect.any(Number) }]);
    expect(state.leases[0]!.expiresAt).toBeGreaterThan(state.now);
    expect(await describeQueue.list(client, { prefix })).toEqual([{ name: 'jobs' }, { name: 'other' }]);
    await q.ack(item.lease);
    expect(await describeQueue(client, 'jobs', { prefix })).toMatchObject({ ready: 2, inFlight: 0, leases: [] });
  });

  it('counts an expired lease as ready, and a blocked getter as a waiter', async () => {
    const q = new LeasedKeyQueue<string>(client, 'q', { prefix });
    await q.put('k', 'v');
    await q.get({ leaseTimeoutMs: 1 });
    await new Promise((r) => setTimeout(r, 20));
    expect(await describeQueue(client, 'q', { prefix })).toMatchObject({ ready: 1, inFlight: 0 });
    const empty = new LeasedKeyQueue<string>(client, 'empty', { prefix });
    await empty.put('z', 'z');
    const z = await empty.get();
    const waiting = empty.get({ timeoutMs: 20_000 });
    await until(async () => (await describeQueue(client, 'empty', { prefix }))!.waiters === 1);
    await empty.ack(z.lease);
    await empty.put('y', 'y');
    await empty.ack((await waiting).lease);
  });

  it('returns null for an unknown queue, and rejects a bad name', async () => {
    expect(await describeQueue(client, 'none', { prefix })).toBeNull();
    await expect(describeQueue(client, '', { prefix })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
