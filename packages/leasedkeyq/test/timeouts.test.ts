import { WakeBus } from '@x/redis-core';
import { TARGETS } from '@x/testing';
import { InvalidLeaseError, QueueTimeoutError, type Lease } from '../src';
import { connect, freshQueue, sleep, type TestClient } from './support';

describe.each(TARGETS)('LeasedKeyQueue timeouts on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  describe('lease expiry', () => {
    it('returns an expired item to the queue with its value', async () => {
      const { q } = freshQueue(client, { defaultLeaseTimeoutMs: 100 });
      await q.put('key1', 100);
      expect((await q.get()).key).toBe('key1');
      await sleep(250);
      expect(await q.size()).toBe(1);
      expect(await q.inflightSize()).toBe(0);
      const again = await q.get({ timeoutMs: 100 });
      expect([again.key, again.value]).toEqual(['key1', 100]);
    });

    it('puts expired items at the front, the earliest expired first, ahead of items never leased', async () => {
      const { q } = freshQueue(client);
      for (const key of ['slow', 'fast', 'never1', 'never2']) await q.put(key, 0);
      await q.get({ leaseTimeoutMs: 150 });
      await q.get({ leaseTimeoutMs: 50 });
      await sleep(300);
      expect(await q.availableKeys()).toEqual(['fast', 'slow', 'never1', 'never2']);
    });

    it('orders expired items by their expiry, not by when the queue noticed, ahead of items released to the front', async () => {
      const { q } = freshQueue(client);
      for (const key of ['late', 'early', 'front', 'never']) await q.put(key, 0);
      await q.get({ leaseTimeoutMs: 250 });
      await q.get({ leaseTimeoutMs: 50 });
      const front = await q.get({ leaseTimeoutMs: null });
      await sleep(120);
      // 'early' has expired and is noticed now; 'late' expires after the release below.
      expect(await q.size()).toBe(2);
      await q.release(front.lease, { requeueFront: true });
      await sleep(250);
      expect(await q.availableKeys()).toEqual(['early', 'late', 'front', 'never']);
    });

    it('uses the per-lease timeout over the default, 30 s by default, and none for null', async () => {
      const { q } = freshQueue(client);
      for (const key of ['default', 'short', 'forever']) await q.put(key, 0);
      const byDefault = await q.get();
      const short = await q.get({ leaseTimeoutMs: 80 });
      const forever = await q.get({ leaseTimeoutMs: null });
      expect(forever.lease.expiresAt).toBeNull();
      const gap = byDefault.lease.expiresAt! - short.lease.expiresAt!;
      expect(gap).toBeGreaterThan(29_000);
      expect(gap).toBeLessThanOrEqual(30_000 - 80);
      await sleep(250);
      expect(await q.availableKeys()).toEqual(['short']);
      expect(await q.inflightKeys()).toEqual(['default', 'forever']);
    });

    it('never expires leases of a queue whose default is null', async () => {
      const { q } = freshQueue(client, { defaultLeaseTimeoutMs: null });
      await q.put('key1', 100);
      const { lease } = await q.get();
      expect(lease.expiresAt).toBeNull();
      await sleep(300);
      expect(await q.inflightSize()).toBe(1);
      expect(await q.size()).toBe(0);
    });

    it('does not return an item that was acked or released before its lease ran out', async () => {
      const { q } = freshQueue(client, { defaultLeaseTimeoutMs: 100 });
      await q.put('acked', 1);
      await q.put('released', 2);
      await q.ack((await q.get()).lease);
      await q.release((await q.get()).lease, { requeueFront: true });
      await sleep(250);
      expect(await q.availableKeys()).toEqual(['released']);
      expect(await q.inflightSize()).toBe(0);
    });

    it('keeps an update made while in flight when the lease expires, and invalidates the old lease', async () => {
      const { q } = freshQueue(client, { defaultLeaseTimeoutMs: 100 });
      await q.put('updated', 100);
      await q.put('buffered', 1);
      const u = await q.get();
      const b = await q.get();
      await q.put('updated', 200);
      await q.put('buffered', 2, { ifInFlight: 'buffer' });
      await sleep(250);
      await expect(q.ack(u.lease)).rejects.toBeInstanceOf(InvalidLeaseError);
      await expect(q.release(b.lease)).rejects.toBeInstanceOf(InvalidLeaseError);
      const values = [];
      for (let i = 0; i < 2; i++) values.push((await q.get()).value);
      expect(values.sort()).toEqual([2, 200]);
    });

    it('returns every one of many expired leases, none twice', async () => {
      const { q } = freshQueue(client, { defaultLeaseTimeoutMs: 100 });
      for (let i = 0; i < 20; i++) await q.put(`item-${i}`, i);
      const leases: Lease[] = [];
      for (let i = 0; i < 20; i++) leases.push((await q.get()).lease);
      await sleep(250);
      expect(await q.size()).toBe(20);
      expect(await q.inflightSize()).toBe(0);
      expect(new Set(await q.availableKeys()).size).toBe(20);
    });

    it('wakes a take waiting for an in-flight key when its lease expires', async () => {
      const { q } = freshQueue(client, { defaultLeaseTimeoutMs: 150 });
      await q.put('key1', 100);
      const first = await q.get();
      const taken = await q.take('key1', { timeoutMs: 10_000 });
      expect([taken.key, taken.value]).toEqual(['key1', 100]);
      expect(taken.lease.fence).toBeGreaterThan(first.lease.fence);
    });

    it('wakes a get blocked on an empty queue when a lease expires', async () => {
      const { q, other } = freshQueue(client);
      await q.put('k', 1);
      await q.get({ leaseTimeoutMs: 150 });
      const again = await other().get({ timeoutMs: 10_000 });
      expect(again.key).toBe('k');
    });
  });

  describe('wait timeouts', () => {
    it('throws QueueTimeoutError from get on an empty queue and takes nothing', async () => {
      const { q } = freshQueue(client);
      const error = await q.get({ timeoutMs: 100 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(QueueTimeoutError);
      expect(error).toMatchObject({ code: 'QUEUE_TIMEOUT', timeoutMs: 100 });
      await q.put('k', 1);
      expect(await q.size()).toBe(1);
      expect(await q.inflightSize()).toBe(0);
    });

    it('tries exactly once with timeoutMs 0', async () => {
      const { q } = freshQueue(client);
      await expect(q.get({ timeoutMs: 0 })).rejects.toBeInstanceOf(QueueTimeoutError);
      await q.put('k', 1);
      expect((await q.get({ timeoutMs: 0 })).key).toBe('k');
    });

    it('throws QueueTimeoutError from take while the key is absent or stays in flight', async () => {
      const { q } = freshQueue(client);
      await expect(q.take('nonexistent', { timeoutMs: 100 })).rejects.toBeInstanceOf(QueueTimeoutError);
      await q.put('busy', 1);
      const { lease } = await q.get();
      await expect(q.take('busy', { timeoutMs: 100 })).rejects.toBeInstanceOf(QueueTimeoutError);
      expect(await q.inflightKeys()).toEqual(['busy']);
      await q.ack(lease);
    });

    it('returns the item when it arrives before the timeout', async () => {
      const { q, other } = freshQueue(client);
      setTimeout(() => void other().put('key1', 100), 50);
      const got = await q.get({ timeoutMs: 10_000 });
      expect([got.key, got.value]).toEqual(['key1', 100]);
      setTimeout(() => void other().put('key2', 200), 50);
      const taken = await q.take('key2', { timeoutMs: 10_000 });
      expect([taken.key, taken.value]).toEqual(['key2', 200]);
    });
  });
});
