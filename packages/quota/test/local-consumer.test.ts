import { WakeBus } from '@x/redis-core';
import { TARGETS, connect, uniquePrefix, until, type TestClient } from '@x/testing';
import { ConsumerClosedError, InvalidArgumentError, Quota } from '../src';
import { balances, expectBalanced, sleep } from './helpers';

describe.each(TARGETS)('Quota.localConsumer on %s', (target) => {
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
    await quota.topUp('api', 1_000);
  });

  it('answers tryConsume false before the first chunk arrives, then true from memory once it has', async () => {
    const consumer = quota.localConsumer('api', { chunkSize: 100 });
    expect(consumer.tryConsume(1)).toBe(false);
    await until(() => consumer.available > 0);
    expect(consumer.available).toBe(100);
    expect(consumer.tryConsume(1)).toBe(true);
    expect(consumer.tryConsume(40)).toBe(true);
    expect(consumer.available).toBe(59);
    expect((await quota.getState('api')).leased).toBe(100);
    await consumer.close();
  });

  it('waits in consume for a refill, and takes the units', async () => {
    const consumer = quota.localConsumer('api', { chunkSize: 50 });
    expect(await consumer.consume(10)).toBe(true);
    expect(consumer.available).toBe(40);
    const state = await quota.getState('api');
    expect(state.leased + state.consumed).toBe(50);
    expectBalanced(state);
    await consumer.close();
  });

  it('takes an amount larger than chunkSize by leasing enough for it', async () => {
    const consumer = quota.localConsumer('api', { chunkSize: 10 });
    expect(await consumer.consume(250)).toBe(true);
    await consumer.close();
    expect(balances(await quota.getState('api'))).toEqual({ available: 750, reserved: 0, leased: 0, consumed: 250, supplied: 1_000 });
  });

  it('refills in the background before the chunk in hand runs dry', async () => {
    const consumer = quota.localConsumer('api', { chunkSize: 100, refillBelow: 50 });
    await consumer.consume(1);
    for (let i = 0; i < 60; i++) expect(consumer.tryConsume(1)).toBe(true);
    expect(consumer.available).toBe(39);
    await until(() => consumer.available > 90);
    expect(consumer.available).toBe(100);
    await consumer.close();
    expect((await quota.getState('api')).consumed).toBe(61);
  });

  it('reports units used from memory to Redis within flushIntervalMs, without closing', async () => {
    const consumer = quota.localConsumer('api', { chunkSize: 100, refillBelow: 0, flushIntervalMs: 20 });
    await consumer.consume(1);
    for (let i = 0; i < 9; i++) consumer.tryConsume(1);
    await until(async () => (await quota.getState('api')).consumed === 10);
    expect(balances(await quota.getState('api'))).toEqual({ available: 900, reserved: 0, leased: 90, consumed: 10, supplied: 1_000 });
    await consumer.close();
  });

  it('returns false from consume only when available plus the chunk in hand cannot cover the amount', async () => {
    await quota.setAvailable('api', 10);
    const consumer = quota.localConsumer('api', { chunkSize: 4 });
    const answers: boolean[] = [];
    for (let i = 0; i < 4; i++) answers.push(await consumer.consume(3));
    expect(answers).toEqual([true, true, true, false]);
    expect(await consumer.consume(1)).toBe(true);
    expect(await consumer.consume(1)).toBe(false);
    await consumer.close();
    expect(balances(await quota.getState('api'))).toEqual({ available: 0, reserved: 0, leased: 0, consumed: 10, supplied: 10 });
  });

  it('reports what was used and gives back the rest on close', async () => {
    const consumer = quota.localConsumer('api', { chunkSize: 200 });
    expect(await consumer.consume(1)).toBe(true);
    for (let i = 0; i < 20; i++) consumer.tryConsume(2);
    await consumer.close();
    expect(balances(await quota.getState('api'))).toEqual({ available: 959, reserved: 0, leased: 0, consumed: 41, supplied: 1_000 });
  });

  it('throws ConsumerClosedError from tryConsume and consume after close', async () => {
    const consumer = quota.localConsumer('api', { chunkSize: 10 });
    await consumer.consume(1);
    await consumer.close();
    expect(consumer.closed).toBe(true);
    expect(() => consumer.tryConsume(1)).toThrow(ConsumerClosedError);
    await expect(consumer.consume(1)).rejects.toBeInstanceOf(ConsumerClosedError);
    await consumer.close();
  });

  it('rejects bad amounts from tryConsume and consume', async () => {
    const consumer = quota.localConsumer('api', { chunkSize: 10 });
    expect(() => consumer.tryConsume(0)).toThrow(InvalidArgumentError);
    expect(() => consumer.tryConsume(1.5)).toThrow(InvalidArgumentError);
    await expect(consumer.consume(-1)).rejects.toBeInstanceOf(InvalidArgumentError);
    await consumer.close();
  });

  it('never lets many consumers together hand out more than was supplied, and hands out all of it', async () => {
    const consumers = [1, 2, 3, 4].map((n) => quota.localConsumer('api', { chunkSize: 16 + n, flushIntervalMs: 10 }));
    let granted = 0;
    await Promise.all(
      consumers.flatMap((consumer) =>
        Array.from({ length: 5 }, async () => {
          while (await consumer.consume(1)) granted += 1;
        }),
      ),
    );
    await Promise.all(consumers.map((c) => c.close()));
    expect(granted).toBe(1_000);
    expect(balances(await quota.getState('api'))).toEqual({ available: 0, reserved: 0, leased: 0, consumed: 1_000, supplied: 1_000 });
  });

  it('keeps its lease alive past ttlMs while open, and gives it back when closed', async () => {
    const consumer = quota.localConsumer('api', { chunkSize: 100, ttlMs: 600 });
    await consumer.consume(1);
    await sleep(1_500);
    expect(consumer.tryConsume(1)).toBe(true);
    const state = await quota.getState('api');
    expect(state.leased + state.consumed).toBe(100);
    await consumer.close();
    expect(balances(await quota.getState('api'))).toEqual({ available: 998, reserved: 0, leased: 0, consumed: 2, supplied: 1_000 });
  });

  it('stops handing out units when its lease may have expired, and still counts what it used before', async () => {
    const consumer = quota.localConsumer('api', { chunkSize: 100, ttlMs: 400, flushIntervalMs: 60_000 });
    await consumer.consume(1);
    for (let i = 0; i < 4; i++) expect(consumer.tryConsume(1)).toBe(true);
    // Block the event loop past the lease's TTL: no renewal can be sent, the server lets it expire.
    const end = Date.now() + 700;
    while (Date.now() < end);
    expect(consumer.tryConsume(1)).toBe(false);
    expect(await consumer.consume(1)).toBe(true);
    await consumer.close();
    expect(balances(await quota.getState('api'))).toEqual({ available: 994, reserved: 0, leased: 0, consumed: 6, supplied: 1_000 });
  });

  it('closes with await using', async () => {
    {
      await using consumer = quota.localConsumer('api', { chunkSize: 10 });
      await consumer.consume(3);
    }
    expect(balances(await quota.getState('api'))).toEqual({ available: 997, reserved: 0, leased: 0, consumed: 3, supplied: 1_000 });
  });
});
