import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { InvalidArgumentError, Quota, describe as describeQuota } from '../src';

describe.each(TARGETS)('describe (quota) on %s', (target) => {
  let client: TestClient;
  let prefix: string;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await client.close();
  });
  beforeEach(() => {
    prefix = uniquePrefix();
  });

  it('reports what is left, held and consumed, and lists the resources', async () => {
    const quota = new Quota(client, { prefix });
    await quota.topUp('wallet:1', 100);
    await quota.tryConsume('wallet:1', 30);
    const r = await quota.reserve('wallet:1', 20, { ttlMs: 60_000 });
    await quota.topUp('wallet:{2}', 5);

    const state = (await describeQuota(client, 'wallet:1', { prefix }))!;
    expect(state).toMatchObject({ kind: 'quota', name: 'wallet:1', available: 50, reserved: 20, leased: 0, consumed: 30, supplied: 100, holds: 1, leases: 0 });
    expect(state.nextExpiry).toBe(r.expiresAtMs);
    expect(await describeQuota.list(client, { prefix })).toEqual([{ name: 'wallet:1' }, { name: 'wallet:{2}' }]);
  });

  it('counts an expired reservation as given back, as the next call will find it', async () => {
    const quota = new Quota(client, { prefix });
    await quota.topUp('w', 10);
    await quota.reserve('w', 4, { ttlMs: 1 });
    await new Promise((r) => setTimeout(r, 20));
    expect(await describeQuota(client, 'w', { prefix })).toMatchObject({ available: 10, reserved: 0, holds: 0 });
    expect((await quota.getState('w')).available).toBe(10);
  });

  it('returns null for a resource that does not exist, and rejects a bad name', async () => {
    expect(await describeQuota(client, 'none', { prefix })).toBeNull();
    await expect(describeQuota(client, '', { prefix })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
