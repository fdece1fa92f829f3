import { loseNextReply, settle, startFaultyRedis, uniquePrefix, until, type FaultyRedis } from '@x/testing';
import { WakeBus } from '@x/redis-core';
import { createClient } from 'redis';
import { Lock, RedisUnavailableError } from '../src';

// Faults are injected into a server of this file's own: refusing connections or pausing the
// run's shared server would fail the suites running beside it.
describe('Lock through server faults', () => {
  let redis: FaultyRedis;
  const clients: Array<Awaited<ReturnType<typeof connectTo>>> = [];
  beforeAll(async () => {
    redis = await startFaultyRedis();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) {
      await WakeBus.close(c);
      if (c.isOpen) c.destroy();
    }
  });
  afterAll(async () => {
    await redis.stop();
  });

  async function clientNamed(name: string) {
    const c = await connectTo(redis.url, name);
    clients.push(c);
    return c;
  }

  it('a waiter whose connections are cut while new ones are refused gets the lock once the server is back', async () => {
    const name = uniquePrefix();
    // A short TTL: the waiter re-checks every few hundred ms, also during the outage.
    const holder = new Lock(await clientNamed('holder'), name, { ttlMs: 3_000 });
    const waiter = new Lock(await clientNamed('waiter'), name, { ttlMs: 3_000 });
    const held = await holder.acquire();
    const waiting = settle(waiter.acquire({ timeoutMs: 20_000 }));
    await until(async () => (await holder.inspect()).waiters === 1);
    const outage = await redis.outage(1_000, { name: 'waiter' });
    await held.release();
    await outage.ended;
    const got = await waiting;
    expect(got.ok && got.value.fence > held.fence).toBe(true);
    if (got.ok) await got.value.release();
  });

  it('a kill while a re-check is in flight does not reject the wait', async () => {
    const name = uniquePrefix();
    const waiterClient = await clientNamed('waiter');
    // A short TTL: the waiter re-checks every few hundred ms.
    const holder = new Lock(await clientNamed('holder'), name, { ttlMs: 3_000 });
    const waiter = new Lock(waiterClient, name, { ttlMs: 3_000 });
    const held = await holder.acquire();
    const waiting = settle(waiter.acquire({ timeoutMs: 20_000 }));
    await until(async () => (await holder.inspect()).waiters === 1);
    await redis.cutNextCall(waiterClient, { name: 'waiter' });
    await held.release();
    const got = await waiting;
    expect(got.ok).toBe(true);
    if (got.ok) await got.value.release();
  });

  it('a release whose connection is cut in flight is sent again, and the next waiter gets the lock', async () => {
    const name = uniquePrefix();
    const holderClient = await clientNamed('holder');
    const holder = new Lock(holderClient, name);
    const waiter = new Lock(await clientNamed('waiter'), name);
    const held = await holder.acquire();
    const waiting = settle(waiter.acquire({ timeoutMs: 20_000 }));
    await until(async () => (await waiter.inspect()).waiters === 1);
    const cut = redis.cutNextCall(holderClient, { name: 'holder' });
    await held.release();
    await cut;
    const got = await waiting;
    expect(got.ok).toBe(true);
    if (got.ok) {
      expect(got.value.fence).toBeGreaterThan(held.fence);
      await got.value.release();
    }
    expect((await holder.inspect()).locked).toBe(false);
  });

  it('a release whose reply was lost is sent again and resolves: the resend finds it released', async () => {
    const name = uniquePrefix();
    const holderClient = await clientNamed('holder');
    const holder = new Lock(holderClient, name);
    const held = await holder.acquire();
    const lost = loseNextReply(holderClient);
    await held.release();
    await lost;
    expect(held.signal.aborted).toBe(false);
    expect((await holder.inspect()).locked).toBe(false);
    const next = await holder.tryAcquire();
    expect(next).not.toBeNull();
    await next!.release();
  });

  it('a non-waiting call fails fast with RedisUnavailableError, the fault as its cause', async () => {
    const lock = new Lock(await clientNamed('victim'), uniquePrefix());
    const outage = await redis.outage(60_000, { name: 'victim' });
    try {
      const error = await lock.tryAcquire().catch((e: unknown) => e);
      expect(RedisUnavailableError.isInstance(error)).toBe(true);
      expect((error as Error).cause).toBeInstanceOf(Error);
    } finally {
      await outage.end();
    }
  });

  it("a wait that runs out during an outage rejects with its own timeout error, the fault as its cause", async () => {
    const name = uniquePrefix();
    const holder = new Lock(await clientNamed('holder'), name);
    const waiter = new Lock(await clientNamed('waiter'), name);
    const held = await holder.acquire();
    const outage = await redis.outage(60_000, { name: 'waiter' });
    try {
      const error = await waiter.acquire({ timeoutMs: 500 }).catch((e: unknown) => e);
      expect((error as { code?: string }).code).toBe('LOCK_TIMEOUT');
      expect((error as Error).cause).toBeInstanceOf(Error);
    } finally {
      await outage.end();
      await held.release();
    }
  });
});

/** A client that reconnects quickly, named so that a fault can pick its connections. */
async function connectTo(url: string, name: string) {
  const c = createClient({ url, name, socket: { reconnectStrategy: () => 50 } });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}
