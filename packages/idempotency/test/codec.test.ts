import fc from 'fast-check';
import { TARGETS, connect, uniquePrefix, type TestClient } from '@x/testing';
import { WakeBus, keyspace } from '@x/redis-core';
import { IdempotencyStore, canonicalJson, fingerprintOf, jsonCodec, type Codec } from '../src';
import { adminClient } from './helpers';

// Values the default codec promises to round-trip, nested arbitrarily. (No "constructor" keys:
// jest's toStrictEqual compares objects' .constructor, which such a key replaces.)
const leaf = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.boolean(),
  fc.double(),
  fc.integer(),
  fc.string(),
  fc.bigInt(),
  fc.date({ noInvalidDate: false }),
  fc.uint8Array({ maxLength: 16 }).map((a) => Buffer.from(a)),
);
const { value: storable } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('$x', '__proto__', 'v')), tie('value'), { maxKeys: 4, noNullPrototype: true }),
    fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 3 }).map((entries) => new Map(entries)),
    fc.array(tie('value'), { maxLength: 3 }).map((items) => new Set(items)),
  ),
}));

describe.each(TARGETS)('jsonCodec through the store on %s', (target) => {
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

  it('round-trips undefined, Date and bigint through run and replay', async () => {
    const store = new IdempotencyStore(client, { prefix: uniquePrefix() });
    const value = {
      at: new Date('2024-02-29T12:34:56.789Z'),
      amount: 2n ** 80n,
      negative: -12345678901234567890n,
      missing: undefined,
      list: [undefined, 1, new Date(0)],
    };
    await store.run('k', () => value);
    const replayed = await store.run<typeof value>('k', () => ({}) as typeof value);
    expect(replayed).toStrictEqual(value);
    expect(replayed.at).toBeInstanceOf(Date);
    expect(typeof replayed.amount).toBe('bigint');
    expect(Object.prototype.hasOwnProperty.call(replayed, 'missing')).toBe(true);
    expect(await store.run('u', () => undefined)).toBeUndefined();
    expect(await store.begin('u')).toEqual({ status: 'completed', result: undefined });
  });

  it('round-trips any mix of JSON values, undefined, Date, bigint, NaN, -0, Map, Set and Buffer (property)', async () => {
    const store = new IdempotencyStore(client, { prefix: uniquePrefix() });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(storable, async (value) => {
        const key = `p${n++}`;
        await store.set(key, value);
        expect(await store.get(key)).toStrictEqual(value);
      }),
      { numRuns: 50 },
    );
  });

  it('keeps a stored __proto__ key an ordinary property (nothing stored changes a prototype)', async () => {
    const store = new IdempotencyStore(client, { prefix: uniquePrefix() });
    const hostile = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}') as object;
    await store.set('k', hostile);
    const back = (await store.get('k')) as Record<string, unknown>;
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.prototype.hasOwnProperty.call(back, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((back as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it('never executes what is stored: an unknown tag written behind its back is refused', async () => {
    const prefix = uniquePrefix();
    const store = new IdempotencyStore(client, { prefix });
    await store.set('k', 'placeholder');
    const record = keyspace(prefix, 'idempotency', 'k').key('record');
    let executed = false;
    (globalThis as Record<string, unknown>).__idemExecuted = () => (executed = true);
    await admin.hSet(record, 'value', '{"$x":"f","v":"globalThis.__idemExecuted()"}');
    await expect(store.get('k')).rejects.toThrow(TypeError);
    await admin.hSet(record, 'value', '"globalThis.__idemExecuted()"');
    expect(await store.get('k')).toBe('globalThis.__idemExecuted()');
    expect(executed).toBe(false);
    delete (globalThis as Record<string, unknown>).__idemExecuted;
  });

  it('stores with a codec the user plugs in, for results and cached errors alike', async () => {
    const prefix = uniquePrefix();
    const seen: string[] = [];
    const reversing: Codec = {
      encode: (v) => (seen.push('encode'), JSON.stringify(v).split('').reverse().join('')),
      decode: (s) => (seen.push('decode'), JSON.parse(s.split('').reverse().join(''))),
    };
    const store = new IdempotencyStore(client, { prefix, codec: reversing, cacheErrors: true });
    await store.run('k', () => ({ hello: 'world' }));
    expect((await admin.hGet(keyspace(prefix, 'idempotency', 'k').key('record'), 'value'))!).toBe('}"dlrow":"olleh"{');
    expect(await store.run('k', () => ({ hello: 'nobody' }))).toEqual({ hello: 'world' });
    await expect(store.run('e', () => Promise.reject(Object.assign(new Error('no'), { code: 'E_NO' })))).rejects.toThrow('no');
    await expect(store.run('e', () => 'never')).rejects.toMatchObject({ message: 'no', code: 'E_NO' });
    expect(seen).toContain('decode');
  });

  it('gives equal fingerprints to objects that differ only in key order (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), storable, { maxKeys: 6, noNullPrototype: true }), (object) => {
        const reversed: Record<string, unknown> = {};
        for (const key of Object.keys(object).reverse()) {
          Object.defineProperty(reversed, key, { value: object[key], enumerable: true, writable: true, configurable: true });
        }
        expect(fingerprintOf(reversed)).toBe(fingerprintOf(object));
        expect(canonicalJson(reversed)).toBe(canonicalJson(object));
      }),
      { numRuns: 50 },
    );
    expect(fingerprintOf({ a: 1 })).toMatch(/^[0-9a-f]{64}$/);
    expect(jsonCodec.decode(jsonCodec.encode({ $x: 'u' }))).toEqual({ $x: 'u' });
  });
});
