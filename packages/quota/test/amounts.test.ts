import { WakeBus } from '@x/redis-core';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { InvalidArgumentError, Quota } from '../src';
import { allocateScript, consumeChunkScript } from '../src/chunks';
import { consumeScript, setAvailableScript, topUpScript } from '../src/direct';
import { commitScript, reserveScript } from '../src/reservations';
import { resourceKeys } from '../src/resource';
import { keysUnder } from './helpers';

const MAX = Number.MAX_SAFE_INTEGER; // 2^53 - 1
const BAD_AMOUNTS: Array<[string, unknown]> = [
  ['0', 0],
  ['-1', -1],
  ['0.5', 0.5],
  ['NaN', NaN],
  ["'5'", '5'],
  ['Infinity', Infinity],
  ['2^53', 2 ** 53],
];

describe.each(TARGETS)('Quota amounts on %s', (target) => {
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

  describe.each(BAD_AMOUNTS)('amount %s', (_label, bad) => {
    const amount = bad as number;
    const calls: Array<[string, (q: Quota) => Promise<unknown>]> = [
      ['tryConsume', (q) => q.tryConsume('w', amount)],
      ['topUp', (q) => q.topUp('w', amount)],
      ['reserve', (q) => q.reserve('w', amount)],
      ['commit', (q) => q.commit('w', 'hold-1', { amount })],
      ['allocateChunk', (q) => q.allocateChunk('w', amount, { ownerId: 'a' })],
      ['consumeChunk', (q) => q.consumeChunk('w', 'lease-1', amount, { ownerId: 'a' })],
      ['localConsumer.consume', (q) => q.localConsumer('w', { chunkSize: 10 }).consume(amount)],
      ['localConsumer.tryConsume', async (q) => q.localConsumer('w', { chunkSize: 10 }).tryConsume(amount)],
    ];
    it.each(calls)('is rejected by %s with InvalidArgumentError, and nothing is written', async (_name, call) => {
      await expect(call(quota)).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(await keysUnder(client, target, prefix)).toEqual([]);
    });
  });

  it('rejects a negative, fractional or non-numeric setAvailable, and writes nothing', async () => {
    for (const bad of [-1, 0.5, NaN, '5', 2 ** 53]) {
      await expect(quota.setAvailable('w', bad as number)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    expect(await keysUnder(client, target, prefix)).toEqual([]);
  });

  it('rejects bad names, ids and durations before sending anything', async () => {
    await expect(quota.tryConsume('', 1)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(quota.tryConsume('w', 1, { idempotencyKey: '' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(quota.reserve('w', 1, { ttlMs: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(quota.reserve('w', 1, { reservationId: '' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(quota.allocateChunk('w', 1, { ownerId: '' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(quota.renewChunk('w', 'l', { ownerId: 'a', ttlMs: 1.5 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(quota.releaseChunk('w', '', { ownerId: 'a' })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(() => quota.localConsumer('w', { chunkSize: 0 })).toThrow(InvalidArgumentError);
    expect(() => new Quota(client, { prefix: 'a{b' })).toThrow(InvalidArgumentError);
    expect(await keysUnder(client, target, prefix)).toEqual([]);
  });

  it('rejects bad amounts inside the scripts too, before writing anything', async () => {
    const keys = resourceKeys(prefix, 'w');
    const withRecord = [...keys.common, keys.idempotency('k')];
    for (const bad of ['0', '-1', '0.5', '1e3', '9007199254740992', '99999999999999999', 'abc', '']) {
      await expect(consumeScript.run(client, withRecord, [60_000, bad, 'op', 0])).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(topUpScript.run(client, withRecord, [60_000, bad, 'op', 0])).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(reserveScript.run(client, keys.common, [60_000, bad, 1_000, 'r'])).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(allocateScript.run(client, keys.common, [60_000, bad, 1_000, 'o', 'l'])).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(consumeChunkScript.run(client, [...keys.common, keys.operation('x')], [60_000, 'l', 'o', bad, 0])).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
      if (bad !== '') {
        await expect(commitScript.run(client, keys.common, [60_000, 'r', 'op', bad])).rejects.toBeInstanceOf(InvalidArgumentError);
      }
    }
    await expect(setAvailableScript.run(client, keys.common, [60_000, '-1'])).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(reserveScript.run(client, keys.common, [60_000, '1', '0', 'r'])).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await keysUnder(client, target, prefix)).toEqual([]);
  });

  it('accepts an amount of 1', async () => {
    await quota.topUp('w', 1);
    expect(await quota.tryConsume('w', 1)).toMatchObject({ applied: true, remaining: 0 });
  });

  it('keeps every digit of 2^53 - 1 through top-up, reserve and commit', async () => {
    const state = `${prefix}:quota:{w}:state`;
    expect(await quota.topUp('w', MAX)).toMatchObject({ added: MAX, available: MAX });
    expect(await client.hGet(state, 'available')).toBe('9007199254740991');
    const hold = await quota.reserve('w', MAX);
    expect(hold.amount).toBe(MAX);
    expect(await client.hGet(state, 'reserved')).toBe('9007199254740991');
    expect(await client.hGet(state, 'available')).toBe('0');
    const committed = await quota.commit('w', hold.reservationId);
    expect(committed).toMatchObject({ amount: MAX, remaining: 0 });
    expect(await client.hGet(state, 'consumed')).toBe('9007199254740991');
    expect(await quota.getState('w')).toMatchObject({ available: 0, reserved: 0, consumed: MAX, supplied: MAX });
  });

  it('keeps every digit through a partial commit of 2^53 - 2 out of 2^53 - 1, and through chunks', async () => {
    await quota.topUp('w', MAX);
    const hold = await quota.reserve('w', MAX, { reservationId: 'big' });
    expect(await quota.reserve('w', MAX, { reservationId: 'big' })).toEqual(hold);
    expect(await quota.commit('w', 'big', { amount: MAX - 1 })).toMatchObject({ amount: MAX - 1, remaining: 1 });
    expect(await quota.getState('w')).toMatchObject({ available: 1, consumed: 9007199254740990, supplied: MAX });
    await quota.setAvailable('w', MAX - 9007199254740990);
    const big = new Quota(client, { prefix: `${prefix}b` });
    await big.topUp('c', MAX);
    const lease = await big.allocateChunk('c', MAX, { ownerId: 'o' });
    expect(lease).toMatchObject({ granted: MAX, remaining: MAX });
    expect(await big.consumeChunk('c', lease.leaseId, MAX - 2, { ownerId: 'o' })).toMatchObject({ applied: true, remaining: 2 });
    expect(await big.getState('c')).toMatchObject({ leased: 2, consumed: MAX - 2, available: 0, supplied: MAX });
  });
});
