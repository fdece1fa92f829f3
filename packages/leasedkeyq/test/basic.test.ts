import { WakeBus } from '@x/redis-core';
import { TARGETS } from '@x/testing';
import { InvalidArgumentError, KeyAlreadyInFlightError, LeasedKeyQueue } from '../src';
import { connect, freshQueue, keysWritten, type TestClient } from './support';

describe.each(TARGETS)('LeasedKeyQueue basics on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  describe('put and get', () => {
    it('serves items in the order they were put (FIFO)', async () => {
      const { q } = freshQueue(client);
      for (const [i, key] of ['a', 'b', 'c'].entries()) expect(await q.put(key, i)).toBe('added');
      const got = [];
      for (let i = 0; i < 3; i++) {
        const { key, value } = await q.get();
        got.push([key, value]);
      }
      expect(got).toEqual([
        ['a', 0],
        ['b', 1],
        ['c', 2],
      ]);
    });

    it('replaces the value of an available key and keeps its position', async () => {
      const { q } = freshQueue(client);
      await q.put('a', 1);
      await q.put('b', 2);
      expect(await q.put('a', 10)).toBe('replaced');
      expect(await q.size()).toBe(2);
      expect(await q.availableKeys()).toEqual(['a', 'b']);
      const first = await q.get();
      expect([first.key, first.value]).toEqual(['a', 10]);
    });

    it('keeps one item per key however often it is put', async () => {
      const { q } = freshQueue(client);
      await Promise.all([1, 2, 3, 4, 5].map((v) => q.put('shared', v)));
      expect(await q.size()).toBe(1);
      expect([1, 2, 3, 4, 5]).toContain((await q.get()).value);
    });

    it('takes any key: spaces, braces, unicode, and the longest allowed', async () => {
      const { q } = freshQueue(client);
      const keys = ['a b', '{tag}', 'ünï 🎉', 'k'.repeat(512), 'line\nbreak'];
      for (const key of keys) await q.put(key, 1);
      expect(await q.availableKeys()).toEqual(keys);
      const taken = await q.take('{tag}', { timeoutMs: 0 });
      expect(await q.inflightKeys()).toEqual(['{tag}']);
      await q.ack(taken.lease);
      for (const key of keys.filter((k) => k !== '{tag}')) {
        const { key: got, lease } = await q.get({ timeoutMs: 0 });
        expect(got).toBe(key);
        await q.ack(lease);
      }
      expect(await q.size()).toBe(0);
    });

    it('works the same over a RESP2 connection, waits included', async () => {
      const resp2 = await connect(target, { RESP: 2 });
      try {
        const { q, prefix } = freshQueue(client);
        const old = new LeasedKeyQueue<number>(resp2, 'q', { prefix });
        const waiting = old.get({ timeoutMs: 10_000 });
        await q.put('k', 7);
        const got = await waiting;
        expect([got.key, got.value, typeof got.lease.fence]).toEqual(['k', 7, 'number']);
        await expect(old.inflightKeys()).resolves.toEqual(['k']);
        await old.ack(got.lease);
        await expect(old.ack(got.lease)).rejects.toMatchObject({ code: 'LEASE_ALREADY_ACKNOWLEDGED' });
      } finally {
        await WakeBus.close(resp2);
        await resp2.close();
      }
    });

    it('round-trips JSON values, and uses a codec when one is given', async () => {
      const { q } = freshQueue<unknown>(client);
      const value = { action: 'process', data: [1, 'two', null, { nested: true }], text: 'ünïcødé' };
      await q.put('task-1', value);
      expect((await q.get()).value).toEqual(value);
      const upper = freshQueue<string>(client, { codec: { encode: (s) => s.toUpperCase(), decode: (s) => `<${s}>` } }).q;
      await upper.put('k', 'hello');
      expect((await upper.get()).value).toBe('<HELLO>');
    });
  });

  describe('put of an in-flight key', () => {
    it('updates the leased value by default, and the update survives the ack as a new item at the back', async () => {
      const { q } = freshQueue(client);
      await q.put('a', 1);
      await q.put('b', 2);
      const { lease, value } = await q.get();
      expect(value).toBe(1);
      expect(await q.put('a', 100)).toBe('updated');
      expect(await q.size()).toBe(1);
      await q.ack(lease);
      expect(await q.availableKeys()).toEqual(['b', 'a']);
      expect(await q.peek('a')).toBe(100);
    });

    it('gives the updated value to the next consumer when the lease is released', async () => {
      const { q } = freshQueue(client);
      await q.put('key1', 100);
      const { lease } = await q.get();
      await q.put('key1', 200, { ifInFlight: 'update' });
      await q.release(lease);
      const again = await q.get();
      expect([again.key, again.value]).toEqual(['key1', 200]);
    });

    it('rejects with KeyAlreadyInFlightError and changes nothing when asked to', async () => {
      const { q } = freshQueue(client);
      await q.put('a', 1);
      const { lease } = await q.get();
      const error = await q.put('a', 2, { ifInFlight: 'reject' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KeyAlreadyInFlightError);
      expect(error).toMatchObject({ code: 'KEY_ALREADY_IN_FLIGHT', key: 'a' });
      await q.ack(lease);
      expect(await q.size()).toBe(0);
      expect(await q.inflightSize()).toBe(0);
    });

    it('buffers one next value, the latest winning, that becomes a new item at the back on ack', async () => {
      const { q } = freshQueue(client);
      await q.put('a', 1);
      await q.put('b', 2);
      const { lease } = await q.get();
      expect(await q.put('a', 10, { ifInFlight: 'buffer' })).toBe('buffered');
      expect(await q.put('a', 11, { ifInFlight: 'buffer' })).toBe('buffered');
      // A buffered value is not an item yet: the key stays in flight only.
      expect(await q.contains('a')).toBe(false);
      expect(await q.size()).toBe(1);
      await q.ack(lease);
      expect(await q.availableKeys()).toEqual(['b', 'a']);
      expect(await q.peek('a')).toBe(11);
    });

    it('makes the buffered value the one item of the key when the lease is released', async () => {
      const { q } = freshQueue(client);
      await q.put('key1', 100);
      const { lease } = await q.get();
      await q.put('key1', 200, { ifInFlight: 'buffer' });
      await q.release(lease);
      expect(await q.size()).toBe(1);
      expect((await q.get()).value).toBe(200);
    });

    it('keeps the latest of an update and a buffered value, in either order', async () => {
      const { q } = freshQueue(client);
      await q.put('x', 0);
      const first = await q.get();
      await q.put('x', 1, { ifInFlight: 'update' });
      await q.put('x', 2, { ifInFlight: 'buffer' });
      await q.ack(first.lease);
      const second = await q.get();
      expect(second.value).toBe(2);
      await q.put('x', 3, { ifInFlight: 'buffer' });
      await q.put('x', 4, { ifInFlight: 'update' });
      await q.ack(second.lease);
      expect((await q.get()).value).toBe(4);
    });
  });

  describe('introspection', () => {
    it('counts available and in-flight items apart, and lists their keys in order', async () => {
      const { q } = freshQueue(client);
      for (const key of ['k1', 'k2', 'k3', 'k4']) await q.put(key, 0);
      const l1 = (await q.get()).lease;
      const l2 = (await q.get()).lease;
      expect(await q.size()).toBe(2);
      expect(await q.inflightSize()).toBe(2);
      expect(await q.availableKeys()).toEqual(['k3', 'k4']);
      expect(await q.inflightKeys()).toEqual(['k1', 'k2']);
      await q.ack(l1);
      await q.release(l2);
      expect(await q.inflightKeys()).toEqual([]);
      expect(await q.availableKeys()).toEqual(['k3', 'k4', 'k2']);
    });

    it('peeks and finds available keys only, as leasedkeyq does', async () => {
      const { q } = freshQueue(client);
      await q.put('avail', 1);
      await q.put('busy', 2);
      await q.take('busy');
      expect(await q.peek('avail')).toBe(1);
      expect(await q.contains('avail')).toBe(true);
      expect(await q.peek('busy')).toBeUndefined();
      expect(await q.contains('busy')).toBe(false);
      expect(await q.peek('absent')).toBeUndefined();
      expect(await q.contains('absent')).toBe(false);
    });

    it('shares one queue between every instance that opens the same name', async () => {
      const { q, other } = freshQueue(client);
      const q2 = other();
      await q.put('a', 1);
      await q2.put('b', 2);
      const fromSecond = await q2.get();
      expect(fromSecond.key).toBe('a');
      await q.ack(fromSecond.lease);
      expect(await q2.availableKeys()).toEqual(['b']);
    });
  });

  describe('bad input', () => {
    it('rejects bad arguments with InvalidArgumentError before anything is written', async () => {
      const { q, prefix } = freshQueue(client);
      const bad: Array<() => Promise<unknown>> = [
        () => q.put('', 1),
        () => q.put('x'.repeat(600), 1),
        () => q.put('k', undefined as unknown as number),
        () => q.put('k', 1, { ifInFlight: 'replace' as 'update' }),
        () => q.get({ timeoutMs: -1 }),
        () => q.get({ timeoutMs: 1.5 }),
        () => q.get({ leaseTimeoutMs: 0 }),
        () => q.take('', {}),
        () => q.get({ signal: 'nope' as unknown as AbortSignal }),
        () => q.ack({ key: 'k', token: 'not hex', fence: 1, expiresAt: null, deliveries: 1 }),
        () => q.release(null as never),
        () => q.extend({ key: 'k', token: 'abcdef0123456789', fence: 1, expiresAt: null, deliveries: 1 }, 0),
        () => q.peek(42 as unknown as string),
      ];
      for (const call of bad) await expect(call()).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(() => new LeasedKeyQueue(client, '', { prefix })).toThrow(InvalidArgumentError);
      expect(() => new LeasedKeyQueue(client, 'q', { prefix: 'a{b' })).toThrow(InvalidArgumentError);
      expect(() => new LeasedKeyQueue(client, 'q', { prefix, defaultLeaseTimeoutMs: -5 })).toThrow(InvalidArgumentError);
      expect(() => new LeasedKeyQueue(client, 'q', { prefix, ackHistory: 1.5 })).toThrow(InvalidArgumentError);
      expect(await keysWritten(client, prefix)).toBe(0);
    });

    it('refuses a value the codec cannot encode (circular, BigInt) with InvalidArgumentError, writing nothing', async () => {
      const { q, prefix } = freshQueue<unknown>(client);
      const circular: Record<string, unknown> = { a: 1 };
      circular.self = circular;
      for (const value of [circular, 10n, { amount: 10n }]) {
        const error = await q.put('k', value).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(InvalidArgumentError);
        expect((error as Error).cause).toBeInstanceOf(TypeError);
      }
      expect(await keysWritten(client, prefix)).toBe(0);
    });
  });
});
