import { WakeBus } from '@x/redis-core';
import { TARGETS, until } from '@x/testing';
import { LeasedKeyQueue, QueueTimeoutError, type LeasedItem } from '../src';
import { connect, countingClient, freshQueue, sleep, type TestClient } from './support';

describe.each(TARGETS)('LeasedKeyQueue.process on %s', (target) => {
  let client: TestClient;
  const proxies: TestClient[] = [];
  beforeAll(async () => {
    client = await connect(target);
  });
  afterAll(async () => {
    for (const proxy of proxies) await WakeBus.close(proxy);
    await WakeBus.close(client);
    await client.close();
  });

  it('handles every item once and acks it, never running more handlers than its concurrency', async () => {
    const { q } = freshQueue(client);
    const seen: string[] = [];
    let active = 0;
    let most = 0;
    const worker = q.process(
      async ({ key }) => {
        active += 1;
        most = Math.max(most, active);
        await sleep(5);
        seen.push(key);
        active -= 1;
      },
      { concurrency: 4 },
    );
    for (let i = 0; i < 60; i++) await q.put(`k${i}`, i);
    await until(() => seen.length === 60);
    await worker.stop();
    expect(seen.sort()).toEqual(Array.from({ length: 60 }, (_, i) => `k${i}`).sort());
    expect(most).toBeLessThanOrEqual(4);
    expect(most).toBeGreaterThan(1);
    expect([await q.size(), await q.inflightSize(), await q.deadLetterSize()]).toEqual([0, 0, 0]);
  });

  it('dead-letters an item whose handler always throws after exactly maxDeliveries attempts', async () => {
    const { q } = freshQueue(client, { maxDeliveries: 4 });
    const attempts: number[] = [];
    const errors: Array<[string, string | undefined]> = [];
    const worker = q.process(
      ({ key, deliveries }) => {
        if (key === 'poison') {
          attempts.push(deliveries);
          throw new Error(`bad item (attempt ${deliveries})`);
        }
      },
      { concurrency: 2, backoff: { initialDelayMs: 10, maxDelayMs: 40 }, onError: (e, item) => errors.push([String(e), item?.key]) },
    );
    await q.put('poison', 1);
    await q.put('good', 2);
    await until(async () => (await q.deadLetterSize()) === 1);
    await worker.stop();
    expect(attempts).toEqual([1, 2, 3, 4]);
    expect(errors).toEqual([1, 2, 3, 4].map((n) => [`Error: bad item (attempt ${n})`, 'poison']));
    expect(await q.deadLetters()).toMatchObject([{ key: 'poison', value: 1, deliveries: 4, error: 'Error: bad item (attempt 4)' }]);
    expect([await q.size(), await q.inflightSize(), await q.delayedSize()]).toEqual([0, 0, 0]);
  });

  it('retries a failed item after a backoff delay, then acks it', async () => {
    const { q } = freshQueue(client);
    const calls: number[] = [];
    const worker = q.process(
      ({ deliveries }) => {
        calls.push(deliveries);
        if (deliveries === 1) throw new Error('transient');
      },
      { backoff: { initialDelayMs: 400, maxDelayMs: 400 }, onError: () => undefined },
    );
    await q.put('k', 1);
    await until(() => calls.length === 1);
    await until(async () => (await q.delayedSize()) === 1);
    expect(calls).toEqual([1]);
    await until(() => calls.length === 2);
    await worker.stop();
    expect(calls).toEqual([1, 2]);
    expect([await q.size(), await q.inflightSize(), await q.delayedSize(), await q.deadLetterSize()]).toEqual([0, 0, 0, 0]);
  });

  it('stops cleanly: items in progress finish and are acked, waits take nothing, the rest stays queued', async () => {
    const { q, other } = freshQueue(client);
    const done: string[] = [];
    const started: string[] = [];
    const worker = q.process(
      async ({ key }) => {
        started.push(key);
        await sleep(100);
        done.push(key);
      },
      { concurrency: 3 },
    );
    for (let i = 0; i < 10; i++) await q.put(`k${i}`, i);
    await until(() => started.length === 3);
    const stopping = worker.stop();
    expect(worker.stopping).toBe(true);
    await stopping;
    expect(done.sort()).toEqual([...started].sort());
    expect(await q.inflightSize()).toBe(0);
    expect(await q.size()).toBe(10 - done.length);
    // The rest is there for the next worker: every item handled exactly once in all.
    const later: string[] = [];
    const next = other().process(({ key }) => void later.push(key), { concurrency: 2 });
    await until(() => done.length + later.length === 10);
    await next.stop();
    expect([...done, ...later].sort()).toEqual(Array.from({ length: 10 }, (_, i) => `k${i}`).sort());
  });

  it('renews the lease while a handler runs longer than the lease, so nobody else gets the item', async () => {
    const { q, other } = freshQueue(client);
    const errors: unknown[] = [];
    let signalAborted = false;
    const finished: string[] = [];
    const worker = q.process(
      async ({ key, signal }) => {
        await sleep(1_200);
        signalAborted = signal.aborted;
        finished.push(key);
      },
      { leaseTimeoutMs: 300, onError: (e) => errors.push(e) },
    );
    await q.put('slow', 1);
    await until(async () => (await q.inflightSize()) === 1);
    await expect(other().get({ timeoutMs: 900 })).rejects.toBeInstanceOf(QueueTimeoutError);
    await until(() => finished.length === 1);
    await worker.stop();
    expect(signalAborted).toBe(false);
    expect(errors).toEqual([]);
    expect([await q.size(), await q.inflightSize()]).toEqual([0, 0]);
  });

  it('waits for items without polling', async () => {
    const { client: spy, scripts } = countingClient(client);
    proxies.push(spy);
    const { prefix } = freshQueue(client);
    const q = new LeasedKeyQueue<number>(spy, 'q', { prefix });
    const producer = new LeasedKeyQueue<number>(client, 'q', { prefix });
    const seen: number[] = [];
    const worker = q.process(({ value }) => void seen.push(value), { concurrency: 8 });
    await sleep(300);
    const idle = scripts();
    await sleep(1_500);
    expect(scripts()).toBe(idle);
    await producer.put('k', 1);
    await until(() => seen.length === 1);
    await worker.stop();
    expect(seen).toEqual([1]);
  });

  it('acks an item and leases the next in one script while items wait', async () => {
    const { client: spy, scripts } = countingClient(client);
    proxies.push(spy);
    const { prefix } = freshQueue(client);
    const producer = new LeasedKeyQueue<number>(client, 'q', { prefix });
    for (let i = 0; i < 20; i++) await producer.put(`k${i}`, i);
    const q = new LeasedKeyQueue<number>(spy, 'q', { prefix });
    const seen: number[] = [];
    const worker = q.process(({ value }) => void seen.push(value));
    await until(() => seen.length === 20);
    await until(async () => (await producer.inflightSize()) === 0);
    await worker.stop();
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i));
    // One get, one ack-and-get per item, then the look, registration and leave of the idle wait.
    expect(scripts()).toBeLessThanOrEqual(20 + 4);
  });

  it('aborts the signal of a lease lost while its handler runs, reports it, and neither acks nor releases', async () => {
    const { q, other } = freshQueue(client);
    const errors: Array<{ code: unknown; key: string | undefined }> = [];
    const leases: Array<LeasedItem<number>['lease']> = [];
    const reasons: unknown[] = [];
    const worker = q.process(
      async ({ lease, signal, deliveries }) => {
        if (deliveries > 1) return;
        leases.push(lease);
        await until(() => signal.aborted, 10_000);
        reasons.push((signal.reason as { code?: unknown }).code);
      },
      { leaseTimeoutMs: 300, onError: (e, item) => errors.push({ code: (e as { code?: unknown }).code, key: item?.key }) },
    );
    await q.put('k', 1);
    await until(() => leases.length === 1);
    // Another process ends the lease under the worker: the next renewal is refused.
    await other().release(leases[0]!);
    await until(() => reasons.length === 1);
    await until(async () => (await q.size()) + (await q.inflightSize()) === 0);
    await worker.stop();
    expect(reasons).toEqual(['INVALID_LEASE']);
    expect(errors).toEqual([{ code: 'INVALID_LEASE', key: 'k' }]);
  });

  it('is stopped by its signal and by close() of its queue, finishing the item in progress', async () => {
    const { q, other } = freshQueue(client);
    const controller = new AbortController();
    const done: string[] = [];
    const byClose = q.process(async ({ key }) => {
      await sleep(100);
      done.push(key);
    });
    const bySignal = other().process(() => undefined, { signal: controller.signal });
    controller.abort();
    await bySignal.stop();
    await q.put('k', 1);
    await until(async () => (await q.inflightSize()) === 1);
    await q.close();
    expect(done).toEqual(['k']);
    const probe = other();
    expect([await probe.size(), await probe.inflightSize()]).toEqual([0, 0]);
  });
});
