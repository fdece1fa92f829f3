import { WakeBus } from '@x/redis-core';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import {
  IdempotencyConflictError,
  InsufficientQuotaError,
  LeaseAlreadyReleasedError,
  LeaseExpiredError,
  LeaseNotFoundError,
  LeaseOwnershipMismatchError,
  Quota,
} from '../src';
import { balances, expectBalanced, sleep } from './helpers';

describe.each(TARGETS)('Quota chunk leases on %s', (target) => {
  let client: TestClient;
  let prefix: string;
  let quota: Quota;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });
  beforeEach(async () => {
    prefix = uniquePrefix();
    quota = new Quota(client, { prefix });
    await quota.topUp('hot', 100);
  });

  it('leases units to an owner: they leave available and show as leased', async () => {
    const lease = await quota.allocateChunk('hot', 30, { ownerId: 'worker-a', ttlMs: 30_000 });
    expect(lease).toEqual({
      leaseId: expect.any(String),
      resource: 'hot',
      ownerId: 'worker-a',
      granted: 30,
      remaining: 30,
      expiresAtMs: expect.any(Number),
      status: 'active',
    });
    expect(balances(await quota.getState('hot'))).toEqual({ available: 70, reserved: 0, leased: 30, consumed: 0, supplied: 100 });
  });

  it('throws InsufficientQuotaError when available cannot cover the chunk, and changes nothing', async () => {
    await expect(quota.allocateChunk('hot', 101, { ownerId: 'a' })).rejects.toBeInstanceOf(InsufficientQuotaError);
    expect((await quota.getState('hot')).available).toBe(100);
  });

  it('returns the same lease for the same lease id, owner and amount, leasing once', async () => {
    const first = await quota.allocateChunk('hot', 30, { ownerId: 'a', leaseId: 'L1' });
    const again = await quota.allocateChunk('hot', 30, { ownerId: 'a', leaseId: 'L1' });
    expect(again).toEqual(first);
    expect((await quota.getState('hot')).leased).toBe(30);
  });

  it('throws IdempotencyConflictError for a lease id reused with another amount or owner', async () => {
    await quota.allocateChunk('hot', 30, { ownerId: 'a', leaseId: 'L1' });
    await expect(quota.allocateChunk('hot', 31, { ownerId: 'a', leaseId: 'L1' })).rejects.toBeInstanceOf(IdempotencyConflictError);
    await expect(quota.allocateChunk('hot', 30, { ownerId: 'b', leaseId: 'L1' })).rejects.toBeInstanceOf(IdempotencyConflictError);
    expect((await quota.getState('hot')).leased).toBe(30);
  });

  it('spends from the lease: leased becomes consumed, available is untouched', async () => {
    const lease = await quota.allocateChunk('hot', 30, { ownerId: 'a' });
    const result = await quota.consumeChunk('hot', lease.leaseId, 12, { ownerId: 'a' });
    expect(result).toEqual({ applied: true, leaseId: lease.leaseId, remaining: 18, expiresAtMs: lease.expiresAtMs });
    expect(balances(await quota.getState('hot'))).toEqual({ available: 70, reserved: 0, leased: 18, consumed: 12, supplied: 100 });
  });

  it('answers applied false when the lease cannot cover the amount, and takes nothing', async () => {
    const lease = await quota.allocateChunk('hot', 5, { ownerId: 'a' });
    expect(await quota.consumeChunk('hot', lease.leaseId, 6, { ownerId: 'a' })).toMatchObject({ applied: false, remaining: 5 });
    expect((await quota.getState('hot')).leased).toBe(5);
  });

  it('replays a chunk consume with the same operation id word for word and spends once', async () => {
    const lease = await quota.allocateChunk('hot', 30, { ownerId: 'a' });
    const first = await quota.consumeChunk('hot', lease.leaseId, 5, { ownerId: 'a', operationId: 'job-1' });
    await quota.consumeChunk('hot', lease.leaseId, 1, { ownerId: 'a' });
    expect(await quota.consumeChunk('hot', lease.leaseId, 5, { ownerId: 'a', operationId: 'job-1' })).toEqual(first);
    expect((await quota.getState('hot')).consumed).toBe(6);
  });

  it('throws IdempotencyConflictError for an operation id reused with another amount', async () => {
    const lease = await quota.allocateChunk('hot', 30, { ownerId: 'a' });
    await quota.consumeChunk('hot', lease.leaseId, 5, { ownerId: 'a', operationId: 'job-2' });
    await expect(quota.consumeChunk('hot', lease.leaseId, 6, { ownerId: 'a', operationId: 'job-2' })).rejects.toBeInstanceOf(
      IdempotencyConflictError,
    );
    expect((await quota.getState('hot')).consumed).toBe(5);
  });

  it('throws LeaseOwnershipMismatchError when another owner consumes, renews or releases the lease', async () => {
    const lease = await quota.allocateChunk('hot', 30, { ownerId: 'a' });
    await expect(quota.consumeChunk('hot', lease.leaseId, 1, { ownerId: 'b' })).rejects.toBeInstanceOf(LeaseOwnershipMismatchError);
    await expect(quota.renewChunk('hot', lease.leaseId, { ownerId: 'b' })).rejects.toBeInstanceOf(LeaseOwnershipMismatchError);
    await expect(quota.releaseChunk('hot', lease.leaseId, { ownerId: 'b' })).rejects.toBeInstanceOf(LeaseOwnershipMismatchError);
    expect(await quota.getChunk('hot', lease.leaseId)).toEqual(lease);
  });

  it('renews a live lease to ttlMs from now', async () => {
    const lease = await quota.allocateChunk('hot', 30, { ownerId: 'a', ttlMs: 1_000 });
    const renewed = await quota.renewChunk('hot', lease.leaseId, { ownerId: 'a', ttlMs: 60_000 });
    expect(renewed.expiresAtMs).toBeGreaterThanOrEqual(lease.expiresAtMs + 59_000);
    expect(renewed).toMatchObject({ status: 'active', granted: 30, remaining: 30 });
    expect((await quota.getChunk('hot', lease.leaseId))?.expiresAtMs).toBe(renewed.expiresAtMs);
  });

  it('returns an expired lease\'s remaining units to available, and refuses to use or renew it', async () => {
    const lease = await quota.allocateChunk('hot', 30, { ownerId: 'a', ttlMs: 250 });
    await quota.consumeChunk('hot', lease.leaseId, 10, { ownerId: 'a' });
    await sleep(400);
    const state = await quota.getState('hot');
    expect(balances(state)).toEqual({ available: 90, reserved: 0, leased: 0, consumed: 10, supplied: 100 });
    await expect(quota.consumeChunk('hot', lease.leaseId, 1, { ownerId: 'a' })).rejects.toBeInstanceOf(LeaseExpiredError);
    await expect(quota.renewChunk('hot', lease.leaseId, { ownerId: 'a' })).rejects.toBeInstanceOf(LeaseExpiredError);
    await expect(quota.releaseChunk('hot', lease.leaseId, { ownerId: 'a' })).rejects.toBeInstanceOf(LeaseExpiredError);
    await expect(quota.allocateChunk('hot', 30, { ownerId: 'a', leaseId: lease.leaseId })).rejects.toBeInstanceOf(LeaseExpiredError);
    expect(await quota.getChunk('hot', lease.leaseId)).toMatchObject({ status: 'expired', granted: 30, remaining: 20 });
  });

  it('reclaims a lease whose renewal shortened its TTL, on time', async () => {
    const lease = await quota.allocateChunk('hot', 30, { ownerId: 'a', ttlMs: 60_000 });
    await quota.renewChunk('hot', lease.leaseId, { ownerId: 'a', ttlMs: 50 });
    await sleep(150);
    expect(balances(await quota.getState('hot'))).toEqual({ available: 100, reserved: 0, leased: 0, consumed: 0, supplied: 100 });
    expect((await quota.getChunk('hot', lease.leaseId))?.status).toBe('expired');
  });

  it('releases a lease: its remaining units go back to available, and a second release returns the first result', async () => {
    const lease = await quota.allocateChunk('hot', 30, { ownerId: 'a' });
    await quota.consumeChunk('hot', lease.leaseId, 4, { ownerId: 'a' });
    const released = await quota.releaseChunk('hot', lease.leaseId, { ownerId: 'a' });
    expect(released).toMatchObject({ leaseId: lease.leaseId, status: 'released', granted: 30, remaining: 26, ownerId: 'a' });
    expect(balances(await quota.getState('hot'))).toEqual({ available: 96, reserved: 0, leased: 0, consumed: 4, supplied: 100 });
    expect(await quota.releaseChunk('hot', lease.leaseId, { ownerId: 'a' })).toEqual(released);
    expect(balances(await quota.getState('hot'))).toEqual({ available: 96, reserved: 0, leased: 0, consumed: 4, supplied: 100 });
    await expect(quota.releaseChunk('hot', lease.leaseId, { ownerId: 'b' })).rejects.toMatchObject({ code: 'LEASE_OWNERSHIP_MISMATCH' });
    await expect(quota.consumeChunk('hot', lease.leaseId, 1, { ownerId: 'a' })).rejects.toBeInstanceOf(LeaseAlreadyReleasedError);
    await expect(quota.allocateChunk('hot', 30, { ownerId: 'a', leaseId: lease.leaseId })).rejects.toBeInstanceOf(LeaseAlreadyReleasedError);
    expect(await quota.getChunk('hot', lease.leaseId)).toEqual(released);
  });

  it('answers null for an unknown lease, and throws LeaseNotFoundError when using one', async () => {
    expect(await quota.getChunk('hot', 'nope')).toBeNull();
    await expect(quota.consumeChunk('hot', 'nope', 1, { ownerId: 'a' })).rejects.toBeInstanceOf(LeaseNotFoundError);
    await expect(quota.renewChunk('hot', 'nope', { ownerId: 'a' })).rejects.toBeInstanceOf(LeaseNotFoundError);
  });

  it('keeps leases of many owners apart and balanced under concurrent spending', async () => {
    const leases = await Promise.all(['a', 'b', 'c', 'd'].map((ownerId) => quota.allocateChunk('hot', 20, { ownerId })));
    const results = await Promise.all(
      leases.flatMap((lease) => Array.from({ length: 25 }, () => quota.consumeChunk('hot', lease.leaseId, 1, { ownerId: lease.ownerId }))),
    );
    expect(results.filter((r) => r.applied)).toHaveLength(80);
    const state = await quota.getState('hot');
    expect(balances(state)).toEqual({ available: 20, reserved: 0, leased: 0, consumed: 80, supplied: 100 });
    expectBalanced(state);
  });
});
