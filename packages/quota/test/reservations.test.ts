import { WakeBus } from '@x/redis-core';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import {
  IdempotencyConflictError,
  InsufficientQuotaError,
  InvalidArgumentError,
  Quota,
  ReservationAlreadyCommittedError,
  ReservationExpiredError,
  ReservationNotFoundError,
} from '../src';
import { balances, expectBalanced, keysUnder, sleep } from './helpers';

describe.each(TARGETS)('Quota reservations on %s', (target) => {
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
    await quota.topUp('wallet:1', 100);
  });

  /** A hold that has expired by the time this resolves. */
  async function expiredHold(amount: number, reservationId?: string): Promise<string> {
    const hold = await quota.reserve('wallet:1', amount, { ttlMs: 30, ...(reservationId ? { reservationId } : {}) });
    await sleep(100);
    return hold.reservationId;
  }

  it('holds the amount: moves it from available to reserved, expiring at server time plus ttlMs', async () => {
    const before = Date.now();
    const hold = await quota.reserve('wallet:1', 10, { ttlMs: 30_000 });
    expect(hold).toEqual({ reservationId: expect.any(String), resource: 'wallet:1', amount: 10, expiresAtMs: expect.any(Number), status: 'pending' });
    expect(Math.abs(hold.expiresAtMs - (before + 30_000))).toBeLessThan(10_000);
    expect(balances(await quota.getState('wallet:1'))).toEqual({ available: 90, reserved: 10, leased: 0, consumed: 0, supplied: 100 });
  });

  it('throws InsufficientQuotaError when available cannot cover the hold, and changes nothing', async () => {
    await quota.reserve('wallet:1', 95);
    const before = await quota.getState('wallet:1');
    await expect(quota.reserve('wallet:1', 6)).rejects.toBeInstanceOf(InsufficientQuotaError);
    expect(await quota.getState('wallet:1')).toEqual(before);
  });

  it('returns the same hold for the same reservation id and amount while it is pending, holding once', async () => {
    const first = await quota.reserve('wallet:1', 10, { reservationId: 'order-1', ttlMs: 30_000 });
    await sleep(5);
    const again = await quota.reserve('wallet:1', 10, { reservationId: 'order-1', ttlMs: 60_000 });
    expect(again).toEqual(first);
    expect((await quota.getState('wallet:1')).reserved).toBe(10);
  });

  it('throws IdempotencyConflictError for a pending reservation id with another amount', async () => {
    await quota.reserve('wallet:1', 10, { reservationId: 'order-2' });
    await expect(quota.reserve('wallet:1', 11, { reservationId: 'order-2' })).rejects.toBeInstanceOf(IdempotencyConflictError);
    expect((await quota.getState('wallet:1')).reserved).toBe(10);
  });

  it('throws ReservationExpiredError when reserving again with the id of an expired hold', async () => {
    await expiredHold(10, 'order-3');
    await expect(quota.reserve('wallet:1', 10, { reservationId: 'order-3' })).rejects.toBeInstanceOf(ReservationExpiredError);
    expect(balances(await quota.getState('wallet:1'))).toEqual({ available: 100, reserved: 0, leased: 0, consumed: 0, supplied: 100 });
  });

  it('throws ReservationAlreadyCommittedError when reserving again with the id of a committed hold', async () => {
    await quota.reserve('wallet:1', 10, { reservationId: 'order-4' });
    await quota.commit('wallet:1', 'order-4');
    await expect(quota.reserve('wallet:1', 10, { reservationId: 'order-4' })).rejects.toBeInstanceOf(ReservationAlreadyCommittedError);
    expect((await quota.getState('wallet:1')).consumed).toBe(10);
  });

  it('throws IdempotencyConflictError when reserving again with the id of a cancelled hold', async () => {
    await quota.reserve('wallet:1', 10, { reservationId: 'order-5' });
    await quota.cancel('wallet:1', 'order-5');
    await expect(quota.reserve('wallet:1', 10, { reservationId: 'order-5' })).rejects.toBeInstanceOf(IdempotencyConflictError);
    expect((await quota.getState('wallet:1')).reserved).toBe(0);
  });

  it('commits the whole hold: reserved becomes consumed', async () => {
    const hold = await quota.reserve('wallet:1', 10);
    const result = await quota.commit('wallet:1', hold.reservationId);
    expect(result).toEqual({ applied: true, amount: 10, remaining: 90, operationId: expect.any(String) });
    expect(balances(await quota.getState('wallet:1'))).toEqual({ available: 90, reserved: 0, leased: 0, consumed: 10, supplied: 100 });
  });

  it('replays a commit word for word, after the balance moved, and consumes once', async () => {
    const hold = await quota.reserve('wallet:1', 10);
    const first = await quota.commit('wallet:1', hold.reservationId);
    await quota.tryConsume('wallet:1', 30);
    expect(await quota.commit('wallet:1', hold.reservationId)).toEqual(first);
    expect(await quota.commit('wallet:1', hold.reservationId, { amount: 10 })).toEqual(first);
    expect((await quota.getState('wallet:1')).consumed).toBe(40);
  });

  it('commits part of a hold and gives the rest back to available', async () => {
    const hold = await quota.reserve('wallet:1', 10);
    const result = await quota.commit('wallet:1', hold.reservationId, { amount: 3 });
    expect(result).toMatchObject({ applied: true, amount: 3, remaining: 97 });
    expect(balances(await quota.getState('wallet:1'))).toEqual({ available: 97, reserved: 0, leased: 0, consumed: 3, supplied: 100 });
    expect(await quota.commit('wallet:1', hold.reservationId, { amount: 3 })).toEqual(result);
  });

  it('throws IdempotencyConflictError when a committed hold is committed again for another amount', async () => {
    const hold = await quota.reserve('wallet:1', 10);
    await quota.commit('wallet:1', hold.reservationId, { amount: 3 });
    await expect(quota.commit('wallet:1', hold.reservationId, { amount: 4 })).rejects.toBeInstanceOf(IdempotencyConflictError);
    expect((await quota.getState('wallet:1')).consumed).toBe(3);
  });

  it('throws InvalidArgumentError for a commit above the held amount, and keeps the hold', async () => {
    const hold = await quota.reserve('wallet:1', 10);
    await expect(quota.commit('wallet:1', hold.reservationId, { amount: 11 })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(balances(await quota.getState('wallet:1'))).toEqual({ available: 90, reserved: 10, leased: 0, consumed: 0, supplied: 100 });
    expect((await quota.commit('wallet:1', hold.reservationId, { amount: 10 })).amount).toBe(10);
  });

  it('throws ReservationNotFoundError when committing an unknown id', async () => {
    await expect(quota.commit('wallet:1', 'never-made')).rejects.toBeInstanceOf(ReservationNotFoundError);
  });

  it('throws ReservationNotFoundError when committing a cancelled hold', async () => {
    const hold = await quota.reserve('wallet:1', 10);
    await quota.cancel('wallet:1', hold.reservationId);
    await expect(quota.commit('wallet:1', hold.reservationId)).rejects.toBeInstanceOf(ReservationNotFoundError);
    expect((await quota.getState('wallet:1')).consumed).toBe(0);
  });

  it('throws ReservationExpiredError when committing an expired hold, whose units are back in available', async () => {
    const id = await expiredHold(10);
    await expect(quota.commit('wallet:1', id)).rejects.toBeInstanceOf(ReservationExpiredError);
    expect(balances(await quota.getState('wallet:1'))).toEqual({ available: 100, reserved: 0, leased: 0, consumed: 0, supplied: 100 });
  });

  it('cancels a pending hold: true, and its units go back to available', async () => {
    const hold = await quota.reserve('wallet:1', 10);
    expect(await quota.cancel('wallet:1', hold.reservationId)).toBe(true);
    expect(balances(await quota.getState('wallet:1'))).toEqual({ available: 100, reserved: 0, leased: 0, consumed: 0, supplied: 100 });
  });

  it('answers true when cancelling an already cancelled hold, giving nothing back twice', async () => {
    const hold = await quota.reserve('wallet:1', 10);
    await quota.cancel('wallet:1', hold.reservationId);
    expect(await quota.cancel('wallet:1', hold.reservationId)).toBe(true);
    expect((await quota.getState('wallet:1')).available).toBe(100);
  });

  it('answers true when cancelling an expired hold', async () => {
    const id = await expiredHold(10);
    expect(await quota.cancel('wallet:1', id)).toBe(true);
    expect((await quota.getState('wallet:1')).available).toBe(100);
  });

  it('answers false when cancelling an unknown or a committed hold', async () => {
    expect(await quota.cancel('wallet:1', 'never-made')).toBe(false);
    const hold = await quota.reserve('wallet:1', 10);
    await quota.commit('wallet:1', hold.reservationId);
    expect(await quota.cancel('wallet:1', hold.reservationId)).toBe(false);
    expect(balances(await quota.getState('wallet:1'))).toEqual({ available: 90, reserved: 0, leased: 0, consumed: 10, supplied: 100 });
  });

  it('returns an expired hold to available lazily, on the next touch of the resource', async () => {
    await quota.reserve('wallet:1', 40, { ttlMs: 30 });
    await quota.reserve('wallet:1', 5, { ttlMs: 60_000 });
    await sleep(100);
    const state = await quota.getState('wallet:1');
    expect(balances(state)).toEqual({ available: 95, reserved: 5, leased: 0, consumed: 0, supplied: 100 });
    expectBalanced(state);
  });

  it('reclaims 200 expired holds within the call, so that a request that fits succeeds at once', async () => {
    await quota.setAvailable('wallet:1', 200);
    for (let i = 0; i < 200; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => quota.reserve('wallet:1', 1, { ttlMs: 30, reservationId: `h${i + j}` })));
    }
    await sleep(150);
    const hold = await quota.reserve('wallet:1', 200);
    expect(hold.amount).toBe(200);
    expect(balances(await quota.getState('wallet:1'))).toEqual({ available: 0, reserved: 200, leased: 0, consumed: 0, supplied: 200 });
    // Each reclaimed hold left a receipt: its id now answers "expired", not "not found".
    await expect(quota.commit('wallet:1', 'h0')).rejects.toBeInstanceOf(ReservationExpiredError);
    await expect(quota.commit('wallet:1', 'h199')).rejects.toBeInstanceOf(ReservationExpiredError);
  });

  it('keeps the live hash small: finished holds leave it, and their receipts are forgotten after receiptTtlMs', async () => {
    const forgetful = new Quota(client, { prefix, receiptTtlMs: 40 });
    const a = await forgetful.reserve('wallet:1', 1);
    const b = await forgetful.reserve('wallet:1', 1);
    await forgetful.commit('wallet:1', a.reservationId);
    await forgetful.cancel('wallet:1', b.reservationId);
    expect(await client.hLen(`${prefix}:quota:{wallet:1}:holds`)).toBe(0);
    await sleep(120);
    await forgetful.getState('wallet:1');
    await expect(forgetful.commit('wallet:1', a.reservationId)).rejects.toBeInstanceOf(ReservationNotFoundError);
    expect(await client.exists(`${prefix}:quota:{wallet:1}:receipts`)).toBe(0);
    const keys = await keysUnder(client, target, prefix);
    expect(keys.filter((k) => k.includes('receipts'))).toEqual([]);
  });
});
