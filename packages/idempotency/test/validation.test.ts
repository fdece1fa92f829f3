import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { WakeBus } from '@x/redis-core';
import { IdempotencyStore, InvalidArgumentError, idempotencyMiddleware, type Acquired } from '../src';
import { keysUnder } from './helpers';

describe.each(TARGETS)('IdempotencyStore input checks on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  it('refuses bad keys with InvalidArgumentError, runs nothing and writes nothing', async () => {
    const prefix = uniquePrefix();
    const store = new IdempotencyStore(client, { prefix });
    let runs = 0;
    for (const key of ['', 'k'.repeat(513), 'é'.repeat(257), 42, null, undefined, { toString: () => 'k' }]) {
      await expect(store.run(key as string, () => ++runs)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store.begin(key as string)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store.set(key as string, 1)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store.get(key as string)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    expect(runs).toBe(0);
    expect(await keysUnder(target, prefix)).toEqual([]);
  });

  it('refuses a value larger than maxValueBytes in set and writes nothing', async () => {
    const prefix = uniquePrefix();
    const store = new IdempotencyStore(client, { prefix, maxValueBytes: 1_000 });
    await expect(store.set('k', 'x'.repeat(1_000))).rejects.toBeInstanceOf(InvalidArgumentError);
    // The limit counts encoded UTF-8 bytes: 400 three-byte characters are 1,200 bytes.
    await expect(store.set('k', '€'.repeat(400))).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await keysUnder(target, prefix)).toEqual([]);
    await store.set('k', 'x'.repeat(900));
    expect(await keysUnder(target, prefix)).toHaveLength(1);
  });

  it('refuses an oversized result of run with InvalidArgumentError and frees the key, leaving nothing stored', async () => {
    const prefix = uniquePrefix();
    const store = new IdempotencyStore(client, { prefix, maxValueBytes: 1_000 });
    let runs = 0;
    await expect(store.run('k', () => (runs++, 'x'.repeat(5_000)))).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await keysUnder(target, prefix)).toEqual([]);
    expect(await store.run('k', () => (runs++, 'small'))).toBe('small');
    expect(runs).toBe(2);
  });

  it('refuses an oversized complete and leaves the claim as it was', async () => {
    const prefix = uniquePrefix();
    const store = new IdempotencyStore(client, { prefix, maxValueBytes: 1_000 });
    const claim = (await store.begin('k')) as Acquired;
    await expect(store.complete('k', claim.token, 'x'.repeat(5_000))).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await store.begin('k')).toMatchObject({ status: 'in_progress' });
    await store.complete('k', claim.token, 'fits');
    expect(await store.get('k')).toBe('fits');
  });

  it('refuses values the codec cannot store (functions, symbols, cycles) and writes nothing', async () => {
    const prefix = uniquePrefix();
    const store = new IdempotencyStore(client, { prefix });
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    for (const value of [() => 1, Symbol('s'), { f: () => 1 }, cycle]) {
      await expect(store.set('k', value)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    expect(await keysUnder(target, prefix)).toEqual([]);
  });

  it('refuses bad fingerprints and bad run options before anything is sent', async () => {
    const prefix = uniquePrefix();
    const store = new IdempotencyStore(client, { prefix });
    let runs = 0;
    const op = () => ++runs;
    await expect(store.run('k', op, { fingerprint: { f: () => 1 } })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(store.run('k', op, { waitMs: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(store.run('k', op, { waitMs: 1.5 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(store.run('k', op, { ttlMs: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(store.run('k', op, { cacheErrors: 'yes' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(store.run('k', op, { signal: 'stop' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(store.run('k', 'not a function' as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(store.begin('k', { keepAlive: 'no' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(store.complete('k', '', 1)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(store.fail('k', 'token', { retryable: 'no' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(runs).toBe(0);
    expect(await keysUnder(target, prefix)).toEqual([]);
  });

  it('refuses bad store and middleware options at construction', () => {
    const bad: Array<ConstructorParameters<typeof IdempotencyStore>[1]> = [
      { ttlMs: 0 },
      { ttlMs: 1.5 },
      { leaseMs: 99 },
      { leaseMs: 2 ** 31 },
      { waitMs: -5 },
      { maxValueBytes: 0 },
      { prefix: 'a{b' },
      { prefix: '' },
      { codec: { encode: JSON.stringify } as never },
      { cacheErrors: 1 as never },
    ];
    for (const options of bad) expect(() => new IdempotencyStore(client, options)).toThrow(InvalidArgumentError);
    expect(() => new IdempotencyStore(null as never)).toThrow(InvalidArgumentError);
    const store = new IdempotencyStore(client);
    expect(() => idempotencyMiddleware({} as never)).toThrow(InvalidArgumentError);
    expect(() => idempotencyMiddleware(store, { header: 'Bad Header' })).toThrow(InvalidArgumentError);
    expect(() => idempotencyMiddleware(store, { maxBodyBytes: -1 })).toThrow(InvalidArgumentError);
    expect(() => idempotencyMiddleware(store, { storeHeaders: ['ok', 'not ok'] })).toThrow(InvalidArgumentError);
    expect(() => idempotencyMiddleware(store, { fingerprint: 'body' as never })).toThrow(InvalidArgumentError);
    expect(() => idempotencyMiddleware(store, { required: 'yes' as never })).toThrow(InvalidArgumentError);
  });
});
