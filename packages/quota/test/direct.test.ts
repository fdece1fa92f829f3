import { WakeBus } from '@x/redis-core';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { CorruptStateError, IdempotencyConflictError, InvalidArgumentError, Quota } from '../src';
import { balances, expectBalanced, keysUnder, sleep } from './helpers';

describe.each(TARGETS)('Quota direct path on %s', (target) => {
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
  beforeEach(() => {
    prefix = uniquePrefix();
    quota = new Quota(client, { prefix });
  });

  it('reads an unknown resource as zero and writes nothing', async () => {
    expect(await quota.getState('wallet:1')).toEqual({
      resource: 'wallet:1',
      available: 0,
      reserved: 0,
      leased: 0,
      consumed: 0,
      supplied: 0,
      version: 0,
    });
    expect(await keysUnder(client, target, prefix)).toEqual([]);
  });

  it('adds a top-up to available and to supplied', async () => {
    const result = await quota.topUp('wallet:1', 100);
    expect(result).toEqual({ added: 100, available: 100, operationId: expect.any(String) });
    await quota.topUp('wallet:1', 20);
    expect(balances(await quota.getState('wallet:1'))).toEqual({ available: 120, reserved: 0, leased: 0, consumed: 0, supplied: 120 });
  });

  it('consumes an amount that fits and reports what remains', async () => {
    await quota.topUp('wallet:1', 10);
    const result = await quota.tryConsume('wallet:1', 4);
    expect(result).toEqual({ applied: true, remaining: 6, operationId: expect.any(String) });
    const state = await quota.getState('wallet:1');
    expect(balances(state)).toEqual({ available: 6, reserved: 0, leased: 0, consumed: 4, supplied: 10 });
  });

  it('returns applied false with the current remaining, and takes nothing, when the amount does not fit', async () => {
    await quota.topUp('wallet:1', 3);
    const result = await quota.tryConsume('wallet:1', 4);
    expect(result).toEqual({ applied: false, remaining: 3, operationId: expect.any(String) });
    expect(balances(await quota.getState('wallet:1'))).toEqual({ available: 3, reserved: 0, leased: 0, consumed: 0, supplied: 3 });
  });

  it('consumes exactly down to zero and never below, under concurrent calls', async () => {
    await quota.topUp('wallet:1', 50);
    const results = await Promise.all(Array.from({ length: 80 }, () => quota.tryConsume('wallet:1', 1)));
    expect(results.filter((r) => r.applied)).toHaveLength(50);
    const state = await quota.getState('wallet:1');
    expect(state.available).toBe(0);
    expect(state.consumed).toBe(50);
  });

  it('replays a consume with the same idempotency key word for word, after the balance moved, and consumes once', async () => {
    await quota.topUp('wallet:1', 10);
    const first = await quota.tryConsume('wallet:1', 5, { idempotencyKey: 'req-001' });
    await quota.tryConsume('wallet:1', 2);
    const replay = await quota.tryConsume('wallet:1', 5, { idempotencyKey: 'req-001' });
    expect(replay).toEqual(first);
    expect(replay).toEqual({ applied: true, remaining: 5, operationId: first.operationId });
    expect((await quota.getState('wallet:1')).consumed).toBe(7);
  });

  it('replays a consume that did not apply as applied false, even after a top-up made it fit', async () => {
    await quota.topUp('wallet:1', 1);
    const first = await quota.tryConsume('wallet:1', 5, { idempotencyKey: 'req-002' });
    expect(first.applied).toBe(false);
    await quota.topUp('wallet:1', 100);
    expect(await quota.tryConsume('wallet:1', 5, { idempotencyKey: 'req-002' })).toEqual(first);
    expect((await quota.getState('wallet:1')).consumed).toBe(0);
  });

  it('throws IdempotencyConflictError for the same key with another amount, and changes nothing', async () => {
    await quota.topUp('wallet:1', 10);
    await quota.tryConsume('wallet:1', 5, { idempotencyKey: 'req-003' });
    const before = await quota.getState('wallet:1');
    await expect(quota.tryConsume('wallet:1', 6, { idempotencyKey: 'req-003' })).rejects.toBeInstanceOf(IdempotencyConflictError);
    expect(await quota.getState('wallet:1')).toEqual(before);
  });

  it('throws IdempotencyConflictError for the same key used by another operation', async () => {
    await quota.topUp('wallet:1', 10, { idempotencyKey: 'op-1' });
    await expect(quota.tryConsume('wallet:1', 10, { idempotencyKey: 'op-1' })).rejects.toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
    await quota.tryConsume('wallet:1', 1, { idempotencyKey: 'op-2' });
    await expect(quota.topUp('wallet:1', 1, { idempotencyKey: 'op-2' })).rejects.toBeInstanceOf(IdempotencyConflictError);
    expect(balances(await quota.getState('wallet:1'))).toEqual({ available: 9, reserved: 0, leased: 0, consumed: 1, supplied: 10 });
  });

  it('replays a top-up with the same key word for word and adds once', async () => {
    const first = await quota.topUp('wallet:1', 100, { idempotencyKey: 'deposit-9' });
    await quota.tryConsume('wallet:1', 30);
    expect(await quota.topUp('wallet:1', 100, { idempotencyKey: 'deposit-9' })).toEqual(first);
    expect(balances(await quota.getState('wallet:1'))).toEqual({ available: 70, reserved: 0, leased: 0, consumed: 30, supplied: 100 });
  });

  it('scopes idempotency keys per resource', async () => {
    await quota.topUp('wallet:1', 10);
    await quota.topUp('wallet:2', 10);
    const a = await quota.tryConsume('wallet:1', 4, { idempotencyKey: 'same' });
    const b = await quota.tryConsume('wallet:2', 7, { idempotencyKey: 'same' });
    expect(a.remaining).toBe(6);
    expect(b.remaining).toBe(3);
    expect(a.operationId).not.toBe(b.operationId);
  });

  it('forgets an idempotency key after idempotencyTtlMs, so the same key consumes again', async () => {
    const shortMemory = new Quota(client, { prefix, idempotencyTtlMs: 50 });
    await shortMemory.topUp('wallet:1', 10);
    const first = await shortMemory.tryConsume('wallet:1', 3, { idempotencyKey: 'k' });
    await sleep(120);
    const again = await shortMemory.tryConsume('wallet:1', 3, { idempotencyKey: 'k' });
    expect(again.operationId).not.toBe(first.operationId);
    expect(again.remaining).toBe(4);
  });

  it('sets available atomically, moves supplied by the difference and leaves holds and leases as they are', async () => {
    await quota.topUp('wallet:1', 100);
    await quota.reserve('wallet:1', 10);
    await quota.allocateChunk('wallet:1', 20, { ownerId: 'w' });
    await quota.tryConsume('wallet:1', 5);
    const lowered = await quota.setAvailable('wallet:1', 15);
    expect(balances(lowered)).toEqual({ available: 15, reserved: 10, leased: 20, consumed: 5, supplied: 50 });
    expectBalanced(lowered);
    const raised = await quota.setAvailable('wallet:1', 1_000);
    expect(balances(raised)).toEqual({ available: 1_000, reserved: 10, leased: 20, consumed: 5, supplied: 1_035 });
    const zero = await quota.setAvailable('wallet:1', 0);
    expect(zero.available).toBe(0);
    expectBalanced(zero);
    expect((await quota.tryConsume('wallet:1', 1)).applied).toBe(false);
  });

  it('raises the version with every change, and not on reads', async () => {
    await quota.topUp('wallet:1', 10);
    const v1 = (await quota.getState('wallet:1')).version;
    expect((await quota.getState('wallet:1')).version).toBe(v1);
    await quota.tryConsume('wallet:1', 1);
    const v2 = (await quota.getState('wallet:1')).version;
    expect(v2).toBeGreaterThan(v1);
    await quota.tryConsume('wallet:1', 100);
    expect((await quota.getState('wallet:1')).version).toBe(v2);
  });

  it('refuses a top-up that would take the total supplied past 2^53 - 1, and changes nothing', async () => {
    await quota.topUp('wallet:1', Number.MAX_SAFE_INTEGER - 5);
    const before = await quota.getState('wallet:1');
    await expect(quota.topUp('wallet:1', 6)).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await quota.getState('wallet:1')).toEqual(before);
    await quota.topUp('wallet:1', 5);
    expect((await quota.getState('wallet:1')).supplied).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('throws CorruptStateError for a state edited by hand, and changes nothing', async () => {
    await quota.topUp('wallet:1', 10);
    const state = `${prefix}:quota:{wallet:1}:state`;
    await client.hSet(state, 'available', '2.5');
    const error = await quota.tryConsume('wallet:1', 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptStateError);
    expect((error as CorruptStateError).message).toBe('state field available is not an integer');
    expect(await client.hGet(state, 'available')).toBe('2.5');
    expect(await client.hGet(state, 'consumed')).toBeNull();
  });

  it('runs every operation without idempotency keys, with every key of a resource in one hash slot', async () => {
    const resource = 'shop:{eu}:stock';
    await quota.topUp(resource, 100);
    await quota.tryConsume(resource, 1);
    const hold = await quota.reserve(resource, 5);
    await quota.commit(resource, hold.reservationId, { amount: 2 });
    const other = await quota.reserve(resource, 5);
    await quota.cancel(resource, other.reservationId);
    const lease = await quota.allocateChunk(resource, 10, { ownerId: 'w' });
    await quota.consumeChunk(resource, lease.leaseId, 3, { ownerId: 'w' });
    await quota.renewChunk(resource, lease.leaseId, { ownerId: 'w' });
    await quota.releaseChunk(resource, lease.leaseId, { ownerId: 'w' });
    await quota.getChunk(resource, lease.leaseId);
    await quota.setAvailable(resource, 50);
    const consumer = quota.localConsumer(resource, { chunkSize: 5 });
    expect(await consumer.consume(2)).toBe(true);
    await consumer.close();
    const keys = await keysUnder(client, target, prefix);
    expect(keys.length).toBeGreaterThan(0);
    const tags = new Set(keys.map((k) => /\{([^}]*)\}/.exec(k)?.[1]));
    expect([...tags]).toEqual(['shop:%7Beu%7D:stock']);
    expect(balances(await quota.getState(resource))).toEqual({ available: 48, reserved: 0, leased: 0, consumed: 8, supplied: 56 });
  });
});
