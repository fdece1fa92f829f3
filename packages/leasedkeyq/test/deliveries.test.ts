import { WakeBus } from '@x/redis-core';
import { TARGETS } from '@x/testing';
import { keyspace } from '@x/redis-core';
import { InvalidArgumentError, LeasedKeyQueue, QueueTimeoutError, type Lease } from '../src';
import { QUEUE_KEYS, ackGetScript, releaseScript } from '../src/scripts';
import { connect, freshQueue, keysWritten, sleep, stateAfter, type TestClient } from './support';

describe.each(TARGETS)('LeasedKeyQueue deliveries, dead letters, delays and maxInFlight on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  describe('delivery counts', () => {
    it('counts every lease of an item, across release and expiry, and starts again after an ack', async () => {
      const { q } = freshQueue(client);
      await q.put('k', 1);
      const first = await q.get();
      expect([first.deliveries, first.lease.deliveries]).toEqual([1, 1]);
      await q.release(first.lease);
      const second = await q.get({ leaseTimeoutMs: 50 });
      expect(second.deliveries).toBe(2);
      await sleep(120);
      const third = await q.take('k', { timeoutMs: 1_000 });
      expect(third.deliveries).toBe(3);
      // extend keeps the count.
      expect((await q.extend(third.lease, 10_000)).deliveries).toBe(3);
      await q.ack(third.lease);
      await q.put('k', 2);
      expect((await q.get()).deliveries).toBe(1);
    });

    it('keeps the count when an available item is replaced, and gives a value that survives an ack a count of its own', async () => {
      const { q } = freshQueue(client);
      await q.put('k', 1);
      await q.release((await q.get()).lease);
      expect(await q.put('k', 2)).toBe('replaced');
      const leased = await q.get();
      expect([leased.value, leased.deliveries]).toEqual([2, 2]);
      await q.put('k', 3);
      await q.ack(leased.lease);
      const next = await q.get();
      expect([next.value, next.deliveries]).toEqual([3, 1]);
    });
  });

  describe('dead letters', () => {
    it('dead-letters an item released after maxDeliveries leases, with its value, count and last error', async () => {
      const { q } = freshQueue(client, { maxDeliveries: 3 });
      await q.put('poison', 7);
      await q.put('fine', 8);
      const results = [];
      for (let i = 0; i < 3; i++) {
        const { key, lease } = await q.take('poison', { timeoutMs: 1_000 });
        expect(key).toBe('poison');
        results.push(await q.release(lease, { error: new Error(`attempt ${i + 1} failed`) }));
      }
      expect(results).toEqual(['released', 'released', 'dead-lettered']);
      expect(await q.availableKeys()).toEqual(['fine']);
      expect(await q.deadLetterSize()).toBe(1);
      const [letter, ...more] = await q.deadLetters();
      expect(more).toEqual([]);
      expect(letter).toMatchObject({ key: 'poison', value: 7, deliveries: 3, error: 'Error: attempt 3 failed' });
      expect(typeof letter!.deadAt).toBe('number');
      await expect(q.take('poison', { timeoutMs: 0 })).rejects.toBeInstanceOf(QueueTimeoutError);
    });

    it('dead-letters an item whose last allowed lease expired, at the next get, keeping the last error', async () => {
      const { q } = freshQueue(client, { maxDeliveries: 2 });
      await q.put('crashy', 1);
      await q.put('next', 2);
      await q.release((await q.get()).lease, { error: 'first failure', requeueFront: true });
      const last = await q.get({ leaseTimeoutMs: 50 });
      expect([last.key, last.deliveries]).toEqual(['crashy', 2]);
      await sleep(120);
      const got = await q.get({ timeoutMs: 0 });
      expect(got.key).toBe('next');
      expect(await q.deadLetters()).toMatchObject([{ key: 'crashy', value: 1, deliveries: 2, error: 'first failure' }]);
      expect(await q.size()).toBe(0);
    });

    it('lets a get blocked behind dead letters have the first deliverable item', async () => {
      const { q, other } = freshQueue(client, { maxDeliveries: 1 });
      const consumer = other();
      for (let i = 0; i < 250; i++) await q.put(`dead-${i}`, i);
      for (let i = 0; i < 250; i++) await consumer.get();
      // close() returns its leases to the front without judging them: the next get does.
      await consumer.close();
      await q.put('alive', 1);
      // More dead letters than one script moves: the get goes on until it finds 'alive'.
      const got = await q.get({ timeoutMs: 0 });
      expect(got.key).toBe('alive');
      expect(await q.deadLetterSize()).toBe(250);
      expect((await q.deadLetters({ limit: 3 })).map((d) => d.key)).toEqual(['dead-0', 'dead-1', 'dead-2']);
    });

    it('redrives dead letters to the back with a fresh count, leaving those whose key was put again', async () => {
      const { q } = freshQueue(client, { maxDeliveries: 1 });
      for (const key of ['a', 'b', 'c']) {
        await q.put(key, 1);
        expect(await q.release((await q.get()).lease, { error: 'no' })).toBe('dead-lettered');
      }
      await q.put('b', 2);
      await q.put('other', 3);
      expect(await q.redrive()).toBe(2);
      expect(await q.availableKeys()).toEqual(['b', 'other', 'a', 'c']);
      expect(await q.deadLetters()).toMatchObject([{ key: 'b', value: 1 }]);
      // A resent redrive moves nothing more.
      expect(await q.redrive({ keys: ['a', 'c'] })).toBe(0);
      const items = [];
      for (let i = 0; i < 4; i++) items.push(await q.get());
      expect(items.map((i) => [i.key, i.value, i.deliveries])).toEqual([
        ['b', 2, 1],
        ['other', 3, 1],
        ['a', 1, 1],
        ['c', 1, 1],
      ]);
      await q.ack(items[0]!.lease);
      expect(await q.redrive({ keys: ['b'] })).toBe(1);
      expect(await q.availableKeys()).toEqual(['b']);
      expect(await q.deadLetterSize()).toBe(0);
    });

    it('keeps one dead letter per key, the latest', async () => {
      const { q } = freshQueue(client, { maxDeliveries: 1 });
      await q.put('k', 1);
      await q.put('j', 1);
      await q.release((await q.take('k')).lease, { error: 'old' });
      await q.release((await q.take('j')).lease);
      await q.put('k', 2);
      await q.release((await q.take('k')).lease, { error: 'new' });
      expect((await q.deadLetters()).map((d) => [d.key, d.value, d.error])).toEqual([
        ['j', 1, null],
        ['k', 2, 'new'],
      ]);
    });
  });

  describe('delayed release', () => {
    it('keeps a delayed item out of the queue until its delay is over, then puts it at the back', async () => {
      const { q } = freshQueue(client);
      await q.put('retry', 1);
      const { lease } = await q.get();
      expect(await q.release(lease, { delayMs: 300 })).toBe('delayed');
      expect([await q.size(), await q.inflightSize(), await q.delayedSize()]).toEqual([0, 0, 1]);
      expect(await q.contains('retry')).toBe(false);
      // put replaces the value and keeps the delay.
      expect(await q.put('retry', 2)).toBe('replaced');
      await expect(q.get({ timeoutMs: 0 })).rejects.toBeInstanceOf(QueueTimeoutError);
      await sleep(400);
      await q.put('later', 3);
      expect(await q.availableKeys()).toEqual(['retry', 'later']);
      const again = await q.get();
      expect([again.key, again.value, again.deliveries]).toEqual(['retry', 2, 2]);
    });

    it('wakes a blocked get and a blocked take when the delay is over', async () => {
      const { q, other } = freshQueue(client);
      await q.put('a', 1);
      await q.put('b', 2);
      const a = await q.get();
      const b = await q.get();
      await q.release(a.lease, { delayMs: 200 });
      await q.release(b.lease, { delayMs: 200, requeueFront: true });
      const getting = other().get({ timeoutMs: 10_000 });
      const taking = other().take('a', { timeoutMs: 10_000 });
      expect(await stateAfter(getting, 100)).toBe('pending');
      const [got, taken] = await Promise.all([getting, taking]);
      expect([got.key, taken.key].sort()).toEqual(['a', 'b']);
    });

    it('dead-letters at once an item that cannot be leased again, delay or not', async () => {
      const { q } = freshQueue(client, { maxDeliveries: 1 });
      await q.put('k', 1);
      expect(await q.release((await q.get()).lease, { delayMs: 60_000 })).toBe('dead-lettered');
      expect(await q.delayedSize()).toBe(0);
      expect(await q.deadLetterSize()).toBe(1);
    });
  });

  describe('maxInFlight', () => {
    it('leases no more than maxInFlight items at once across instances, and lets a blocked get go when a lease ends', async () => {
      const { q, prefix } = freshQueue(client, { maxInFlight: 2 });
      const q2 = new LeasedKeyQueue<number>(client, 'q', { prefix, maxInFlight: 2 });
      for (let i = 0; i < 5; i++) await q.put(`k${i}`, i);
      const a = await q.get();
      const b = await q2.get();
      await expect(q.get({ timeoutMs: 0 })).rejects.toBeInstanceOf(QueueTimeoutError);
      const blocked = q2.get({ timeoutMs: 10_000 });
      expect(await stateAfter(blocked, 150)).toBe('pending');
      await q.ack(a.lease);
      const c = await blocked;
      expect(c.key).toBe('k2');
      expect(await q.inflightSize()).toBe(2);
      const blockedAgain = q.get({ timeoutMs: 10_000 });
      expect(await stateAfter(blockedAgain, 150)).toBe('pending');
      expect(await q.release(b.lease, { delayMs: 60_000 })).toBe('delayed');
      expect((await blockedAgain).key).toBe('k3');
    });
  });

  describe('resent scripts', () => {
    it('changes nothing when a release or an ack-and-get is sent again after it ran', async () => {
      const { q, prefix } = freshQueue(client, { maxDeliveries: 2 });
      const ks = keyspace(prefix, 'leasedkeyq', 'q');
      const keys = QUEUE_KEYS.map((k) => ks.key(k));
      for (const key of ['a', 'b', 'c']) await q.put(key, 0);
      const a = (await q.get()).lease;
      const release = [ks.channel, a.key, a.token, String(a.fence), '0', '0', 'boom', '2'];
      expect(await releaseScript.run(client, keys, release)).toBe('released');
      await expect(releaseScript.run(client, keys, release)).rejects.toMatchObject({ code: 'INVALID_LEASE' });
      expect(await q.availableKeys()).toEqual(['b', 'c', 'a']);

      const b = (await q.get()).lease;
      const ackGet = [ks.channel, b.key, b.token, String(b.fence), '100', 'cd'.repeat(16), '', '2', ''];
      const first = (await ackGetScript.run(client, keys, ackGet)) as unknown[];
      expect(first.slice(0, 2)).toEqual([0, 'c']);
      await expect(ackGetScript.run(client, keys, ackGet)).rejects.toMatchObject({ code: 'LEASE_ALREADY_ACKNOWLEDGED' });
      expect(await q.availableKeys()).toEqual(['a']);
      expect(await q.inflightKeys()).toEqual(['c']);
    });
  });

  describe('bad input', () => {
    it('rejects bad options with InvalidArgumentError before anything is written', async () => {
      const { q, prefix } = freshQueue(client);
      for (const maxDeliveries of [0, -1, 1.5, Number.NaN, '3', null]) {
        expect(() => new LeasedKeyQueue(client, 'q', { prefix, maxDeliveries: maxDeliveries as number })).toThrow(InvalidArgumentError);
      }
      for (const maxInFlight of [0, 2.5, '1']) {
        expect(() => new LeasedKeyQueue(client, 'q', { prefix, maxInFlight: maxInFlight as number })).toThrow(InvalidArgumentError);
      }
      const lease: Lease = { key: 'k', token: 'abcdef0123456789', fence: 1, expiresAt: null, deliveries: 1 };
      await expect(q.release(lease, { delayMs: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(q.release(lease, { delayMs: 1.5 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(q.deadLetters({ limit: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(q.redrive({ keys: [''] })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(q.redrive({ keys: 'k' as unknown as string[] })).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(() => q.process('nope' as never)).toThrow(InvalidArgumentError);
      expect(() => q.process(async () => undefined, { concurrency: 0 })).toThrow(InvalidArgumentError);
      expect(() => q.process(async () => undefined, { leaseTimeoutMs: 0 })).toThrow(InvalidArgumentError);
      expect(() => q.process(async () => undefined, { backoff: { initialDelayMs: -5 } })).toThrow(InvalidArgumentError);
      expect(() => q.process(async () => undefined, { onError: 1 as never })).toThrow(InvalidArgumentError);
      expect(new LeasedKeyQueue(client, 'q', { prefix, maxDeliveries: 1 })).toBeInstanceOf(LeasedKeyQueue);
      expect(await keysWritten(client, prefix)).toBe(0);
    });
  });
});
