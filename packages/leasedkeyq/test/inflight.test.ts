import { WakeBus } from '@x/redis-core';
import { TARGETS } from '@x/testing';
import { InvalidLeaseError, LeaseAlreadyAcknowledgedError, QueueClosedError, XRedisError, type Lease } from '../src';
import { connect, freshQueue, sleep, type TestClient } from './support';

describe.each(TARGETS)('LeasedKeyQueue leases on %s', (target) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  const fake = (key: string): Lease => ({ key, token: '0123456789abcdef0123456789abcdef', fence: 1, expiresAt: null, deliveries: 1 });

  describe('ack', () => {
    it('removes the item for good', async () => {
      const { q } = freshQueue(client);
      await q.put('key1', 100);
      const { lease } = await q.get();
      expect(await q.inflightSize()).toBe(1);
      await q.ack(lease);
      expect(await q.inflightSize()).toBe(0);
      expect(await q.size()).toBe(0);
      expect(await q.contains('key1')).toBe(false);
      await expect(q.get({ timeoutMs: 0 })).rejects.toMatchObject({ code: 'QUEUE_TIMEOUT' });
    });

    it('throws InvalidLeaseError for a lease the queue never granted', async () => {
      const { q } = freshQueue(client);
      await q.put('key1', 1);
      const error = await q.ack(fake('key1')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidLeaseError);
      expect(XRedisError.isInstance(error) && error.code).toBe('INVALID_LEASE');
      expect(await q.size()).toBe(1);
    });

    it('throws LeaseAlreadyAcknowledgedError on a second ack, from this instance or another', async () => {
      const { q, other } = freshQueue(client);
      await q.put('key1', 100);
      const { lease } = await q.get();
      await q.ack(lease);
      await expect(q.ack(lease)).rejects.toBeInstanceOf(LeaseAlreadyAcknowledgedError);
      // A copy of the lease in another process is answered by the server's ack history.
      await expect(other().ack({ ...lease })).rejects.toMatchObject({ code: 'LEASE_ALREADY_ACKNOWLEDGED' });
    });

    it('answers a repeated ack with InvalidLeaseError once it fell out of the ack history', async () => {
      const { q } = freshQueue(client, { ackHistory: 2 });
      for (const key of ['a', 'b', 'c']) await q.put(key, 0);
      const first = await q.get();
      await q.ack(first.lease);
      await q.ack((await q.get()).lease);
      await expect(q.ack({ ...first.lease })).rejects.toBeInstanceOf(LeaseAlreadyAcknowledgedError);
      await q.ack((await q.get()).lease);
      await expect(q.ack({ ...first.lease })).rejects.toBeInstanceOf(InvalidLeaseError);
    });
  });

  describe('release', () => {
    it('puts the item at the back by default', async () => {
      const { q } = freshQueue(client);
      await q.put('key1', 100);
      await q.put('key2', 200);
      await q.put('key3', 300);
      const { lease: lease1 } = await q.get();
      await q.release(lease1);
      expect(await q.availableKeys()).toEqual(['key2', 'key3', 'key1']);
    });

    it('puts the item at the front with requeueFront', async () => {
      const { q } = freshQueue(client);
      await q.put('key1', 100);
      await q.put('key2', 200);
      await q.put('key3', 300);
      const { lease: lease1 } = await q.get();
      const { lease: lease2 } = await q.get();
      await q.release(lease1, { requeueFront: true });
      await q.release(lease2, { requeueFront: true });
      // The latest released to the front is served first.
      expect(await q.availableKeys()).toEqual(['key2', 'key1', 'key3']);
      expect((await q.get()).key).toBe('key2');
    });

    it('throws LeaseAlreadyAcknowledgedError after an ack, and InvalidLeaseError after a release', async () => {
      const { q } = freshQueue(client);
      await q.put('acked', 1);
      await q.put('released', 2);
      const acked = (await q.get()).lease;
      const released = (await q.get()).lease;
      await q.ack(acked);
      await q.release(released);
      await expect(q.release(acked)).rejects.toBeInstanceOf(LeaseAlreadyAcknowledgedError);
      await expect(q.release(released)).rejects.toBeInstanceOf(InvalidLeaseError);
      await expect(q.ack(released)).rejects.toBeInstanceOf(InvalidLeaseError);
      await expect(q.release(fake('released'))).rejects.toBeInstanceOf(InvalidLeaseError);
      expect(await q.availableKeys()).toEqual(['released']);
    });

    it('handles many leases ending in any order', async () => {
      const { q } = freshQueue(client);
      for (let i = 0; i < 10; i++) await q.put(`key-${i}`, i);
      const leases: Lease[] = [];
      for (let i = 0; i < 10; i++) leases.push((await q.get()).lease);
      await Promise.all([...leases.slice(0, 5).map((l) => q.ack(l)), ...leases.slice(5).map((l) => q.release(l))]);
      expect(await q.inflightSize()).toBe(0);
      expect((await q.availableKeys()).sort()).toEqual(['key-5', 'key-6', 'key-7', 'key-8', 'key-9']);
    });
  });

  describe('fences and extend', () => {
    it('gives every lease a larger fence than the one before, across instances', async () => {
      const { q, other } = freshQueue(client);
      const q2 = other();
      const fences: number[] = [];
      for (let i = 0; i < 6; i++) await q.put(`k${i}`, i);
      for (let i = 0; i < 6; i++) fences.push((await (i % 2 ? q : q2).get()).lease.fence);
      for (let i = 1; i < fences.length; i++) expect(fences[i]!).toBeGreaterThan(fences[i - 1]!);
      expect(fences.every(Number.isSafeInteger)).toBe(true);
    });

    it('refuses an ack or release from a lease that expired and was leased again', async () => {
      const { q } = freshQueue(client);
      await q.put('k', 1);
      const old = await q.get({ leaseTimeoutMs: 50 });
      await sleep(120);
      const renewed = await q.get();
      expect(renewed.key).toBe('k');
      expect(renewed.lease.fence).toBeGreaterThan(old.lease.fence);
      await expect(q.ack(old.lease)).rejects.toBeInstanceOf(InvalidLeaseError);
      await expect(q.release(old.lease)).rejects.toBeInstanceOf(InvalidLeaseError);
      // A forged lease with the live token but an old fence is refused too.
      await expect(q.ack({ ...renewed.lease, fence: old.lease.fence })).rejects.toBeInstanceOf(InvalidLeaseError);
      await q.ack(renewed.lease);
      expect(await q.inflightSize()).toBe(0);
    });

    it('extends a live lease from now on the server clock, keeping its token and fence', async () => {
      const { q } = freshQueue(client);
      await q.put('k', 1);
      const { lease } = await q.get({ leaseTimeoutMs: 150 });
      const extended = await q.extend(lease, 60_000);
      expect(extended).toMatchObject({ key: 'k', token: lease.token, fence: lease.fence });
      expect(extended.expiresAt! - lease.expiresAt!).toBeGreaterThan(50_000);
      await sleep(300);
      expect(await q.inflightKeys()).toEqual(['k']);
      await q.ack(lease);
      expect(await q.inflightSize()).toBe(0);
    });

    it('gives an expiry to a lease that had none when extended', async () => {
      const { q } = freshQueue(client);
      await q.put('k', 1);
      const { lease } = await q.get({ leaseTimeoutMs: null });
      expect(lease.expiresAt).toBeNull();
      const extended = await q.extend(lease, 50);
      expect(typeof extended.expiresAt).toBe('number');
      await sleep(120);
      expect(await q.availableKeys()).toEqual(['k']);
    });

    it('refuses to extend an acked or expired lease', async () => {
      const { q } = freshQueue(client);
      await q.put('a', 1);
      await q.put('b', 2);
      const a = await q.get();
      const b = await q.get({ leaseTimeoutMs: 30 });
      await q.ack(a.lease);
      await sleep(80);
      await expect(q.extend(a.lease, 1_000)).rejects.toBeInstanceOf(LeaseAlreadyAcknowledgedError);
      await expect(q.extend(b.lease, 1_000)).rejects.toBeInstanceOf(InvalidLeaseError);
      expect(await q.availableKeys()).toEqual(['b']);
    });
  });

  describe('close', () => {
    it("returns this instance's leases to the front, the earliest leased first, and leaves others' alone", async () => {
      const { q, other } = freshQueue(client);
      const mine = q;
      const theirs = other();
      for (const key of ['m1', 't1', 'm2', 'rest']) await mine.put(key, 0);
      await mine.get();
      const t1 = await theirs.get();
      await mine.get();
      await mine.close();
      expect(await theirs.availableKeys()).toEqual(['m1', 'm2', 'rest']);
      expect(await theirs.inflightKeys()).toEqual(['t1']);
      await theirs.ack(t1.lease);
    });

    it('keeps values put while in flight when it returns the leases', async () => {
      const { q, other } = freshQueue(client);
      await q.put('k', 1);
      await q.get();
      await other().put('k', 2);
      await q.close();
      expect(await other().peek('k')).toBe(2);
    });

    it('makes every later call throw QueueClosedError, and a second close a no-op', async () => {
      const { q, other } = freshQueue(client);
      await q.put('k', 1);
      const { lease } = await q.get();
      await q.close();
      await q.close();
      const calls: Array<() => Promise<unknown>> = [
        () => q.put('k', 2),
        () => q.get({ timeoutMs: 0 }),
        () => q.take('k'),
        () => q.ack(lease),
        () => q.release(lease),
        () => q.extend(lease, 1_000),
        () => q.peek('k'),
        () => q.contains('k'),
        () => q.availableKeys(),
        () => q.inflightKeys(),
        () => q.size(),
        () => q.inflightSize(),
      ];
      for (const call of calls) await expect(call()).rejects.toBeInstanceOf(QueueClosedError);
      expect(await other().availableKeys()).toEqual(['k']);
    });

    it('closes at the end of an `await using` scope', async () => {
      const { prefix } = freshQueue(client);
      const { LeasedKeyQueue } = await import('../src');
      {
        await using q = new LeasedKeyQueue<number>(client, 'scoped', { prefix });
        await q.put('k', 1);
        await q.get();
      }
      const after = new LeasedKeyQueue<number>(client, 'scoped', { prefix });
      expect(await after.availableKeys()).toEqual(['k']);
    });
  });
});
