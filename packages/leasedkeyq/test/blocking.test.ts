import { WakeBus, keyspace } from '@x/redis-core';
import { TARGETS } from '@x/testing';
import { LeasedKeyQueue, QueueClosedError, QueueTimeoutError, type LeasedItem } from '../src';
import { QUEUE_KEYS, getScript, leaveScript } from '../src/scripts';
import { connect, countingClient, freshQueue, sleep, stateAfter, type TestClient } from './support';

describe.each(TARGETS)('LeasedKeyQueue blocking on %s', (target) => {
  let client: TestClient;
  let producerClient: TestClient;
  const proxies: TestClient[] = [];
  beforeAll(async () => {
    client = await connect(target);
    producerClient = await connect(target);
  });
  afterAll(async () => {
    for (const proxy of proxies) await WakeBus.close(proxy);
    await WakeBus.close(client);
    await WakeBus.close(producerClient);
    await client.close();
    await producerClient.close();
  });

  function counted() {
    const c = countingClient(client);
    proxies.push(c.client);
    return c;
  }

  describe('get', () => {
    it('blocks until an item is put, then returns it', async () => {
      const { q, prefix } = freshQueue(client);
      const producer = new LeasedKeyQueue<number>(producerClient, 'q', { prefix });
      const pending = q.get();
      expect(await stateAfter(pending, 100)).toBe('pending');
      await producer.put('key1', 100);
      const got = await pending;
      expect([got.key, got.value]).toEqual(['key1', 100]);
    });

    it('waits without polling: one look, one registration, then nothing until the put', async () => {
      const { client: spy, scripts } = counted();
      const { prefix } = freshQueue(client);
      const q = new LeasedKeyQueue<number>(spy, 'q', { prefix });
      const producer = new LeasedKeyQueue<number>(producerClient, 'q', { prefix });
      const pending = q.get();
      await sleep(1_500);
      expect(scripts()).toBe(2);
      await producer.put('k', 1);
      expect((await pending).key).toBe('k');
      expect(scripts()).toBe(3);
    });

    it('gives each of many blocked getters a distinct item', async () => {
      const { q, other } = freshQueue(client);
      const q2 = other();
      const getters: Array<Promise<LeasedItem<number>>> = [];
      for (let i = 0; i < 10; i++) getters.push((i % 2 ? q : q2).get({ timeoutMs: 20_000 }));
      await sleep(100);
      for (let i = 0; i < 10; i++) await q.put(`key${i}`, i);
      const items = await Promise.all(getters);
      expect(items.map((item) => item.key).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `key${i}`).sort());
      expect(await q.inflightSize()).toBe(10);
      expect(await q.size()).toBe(0);
    });

    it('rejects with the signal reason when aborted, and takes nothing', async () => {
      const { q } = freshQueue(client);
      const controller = new AbortController();
      const pending = q.get({ signal: controller.signal });
      await sleep(50);
      controller.abort(new Error('stop waiting'));
      await expect(pending).rejects.toThrow('stop waiting');
      await q.put('k', 1);
      expect(await q.size()).toBe(1);
      await expect(q.get({ signal: AbortSignal.abort(new Error('already')) })).rejects.toThrow('already');
      expect(await q.size()).toBe(1);
    });

    it('does not let a cancelled getter swallow the wake-up of the getter behind it', async () => {
      const { q, prefix } = freshQueue(client);
      const ks = keyspace(prefix, 'leasedkeyq', 'q');
      const keys = QUEUE_KEYS.map((k) => ks.key(k));
      // A getter registers and is then too slow to take what it is woken for (it gives up).
      const ghost = 'w0123456789abcdef01234567';
      await getScript.run(client, keys, [ks.channel, 'ab'.repeat(16), '', ghost, '10', '']);
      const behind = q.get({ timeoutMs: 3_000 });
      await sleep(100);
      await q.put('k', 1);
      expect(await stateAfter(behind, 200)).toBe('pending');
      await leaveScript.run(client, keys, [ks.channel, ghost]);
      expect((await behind).key).toBe('k');
    });

    it('counts timeoutMs as a total deadline, not per wake-up', async () => {
      const { client: spy, scripts } = counted();
      const { prefix } = freshQueue(client);
      const q = new LeasedKeyQueue<number>(spy, 'q', { prefix });
      const channel = keyspace(prefix, 'leasedkeyq', 'q').channel;
      const events: string[] = [];
      let settled = false;
      // Wake-ups that never bring an item: the getter re-checks, finds nothing and waits again.
      const noise = (async () => {
        const until = Date.now() + 3_000;
        while (!settled && Date.now() < until) {
          await client.sPublish(channel, '* 1');
          await sleep(40);
        }
        events.push(settled ? 'noise stopped after the get' : 'noise ran out');
      })();
      await q
        .get({ timeoutMs: 500 })
        .catch((e: unknown) => events.push(e instanceof QueueTimeoutError ? 'get timed out' : String(e)))
        .finally(() => (settled = true));
      await noise;
      expect(events).toEqual(['get timed out', 'noise stopped after the get']);
      expect(scripts()).toBeGreaterThan(4);
    });
  });

  describe('take', () => {
    it('blocks until its key is put, whatever else is put', async () => {
      const { q } = freshQueue(client);
      await q.put('wrong-key', 999);
      const pending = q.take('target-key');
      expect(await stateAfter(pending, 100)).toBe('pending');
      await q.put('another', 1);
      expect(await stateAfter(pending, 100)).toBe('pending');
      await q.put('target-key', 100);
      const got = await pending;
      expect([got.key, got.value]).toEqual(['target-key', 100]);
      expect(await q.availableKeys()).toEqual(['wrong-key', 'another']);
    });

    it('blocks while its key is in flight, and gets it when released', async () => {
      const { q, other } = freshQueue(client);
      await q.put('key1', 100);
      const { lease } = await q.get({ leaseTimeoutMs: null });
      const pending = other().take('key1');
      expect(await stateAfter(pending, 150)).toBe('pending');
      await q.release(lease);
      expect((await pending).value).toBe(100);
    });

    it('gets the update made while its key was in flight, once the lease is acked', async () => {
      const { q } = freshQueue(client);
      await q.put('key1', 1);
      const { lease } = await q.get({ leaseTimeoutMs: null });
      const pending = q.take('key1');
      await q.put('key1', 2);
      expect(await stateAfter(pending, 100)).toBe('pending');
      await q.ack(lease);
      expect((await pending).value).toBe(2);
    });

    it('serves several takers of one key in turn', async () => {
      const { q, other } = freshQueue(client);
      const results: number[] = [];
      const takers = [q, other(), other()].map(async (queue) => {
        const { value, lease } = await queue.take('target', { timeoutMs: 20_000 });
        results.push(value);
        await queue.ack(lease);
      });
      await sleep(100);
      for (const value of [1, 2, 3]) {
        await q.put('target', value);
        while (results.length < value) await sleep(10);
      }
      await Promise.all(takers);
      expect(results).toEqual([1, 2, 3]);
    });

    it('serves takers of different keys whatever the order the keys arrive in', async () => {
      const { q } = freshQueue(client);
      const takers = ['key-a', 'key-b', 'key-c'].map((key) => q.take(key, { timeoutMs: 20_000 }));
      await sleep(100);
      await q.put('key-c', 3);
      await q.put('key-a', 1);
      await q.put('key-b', 2);
      const got = await Promise.all(takers);
      expect(got.map((item) => [item.key, item.value])).toEqual([
        ['key-a', 1],
        ['key-b', 2],
        ['key-c', 3],
      ]);
    });

    it('rejects with the signal reason when aborted, and takes nothing', async () => {
      const { q } = freshQueue(client);
      const controller = new AbortController();
      const pending = q.take('k', { signal: controller.signal });
      await sleep(50);
      controller.abort(new Error('cancelled'));
      await expect(pending).rejects.toThrow('cancelled');
      await q.put('k', 1);
      expect(await q.availableKeys()).toEqual(['k']);
    });
  });

  describe('close', () => {
    it('rejects blocked gets and takes with QueueClosedError, and they take nothing', async () => {
      const { q, other } = freshQueue(client);
      const waits = [q.get(), q.take('k'), q.get({ timeoutMs: 60_000 })];
      await sleep(100);
      await q.close();
      for (const wait of waits) await expect(wait).rejects.toBeInstanceOf(QueueClosedError);
      const q2 = other();
      await q2.put('k', 1);
      await q2.put('j', 2);
      expect(await q2.availableKeys()).toEqual(['k', 'j']);
    });
  });
});
