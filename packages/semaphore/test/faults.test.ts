import { loseNextReply, settle, startFaultyRedis, uniquePrefix, until, type FaultyRedis } from '@x/testing';
import { WakeBus, keyspace } from '@x/redis-core';
import { createClient } from 'redis';
import { RedisUnavailableError, Semaphore } from '../src';

// Faults are injected into a server of this file's own: refusing connections or pausing the
// run's shared server would fail the suites running beside it.
describe('Semaphore through server faults', () => {
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

  /** Waiters in the semaphore's queue. */
  const waiterCount = async (name: string): Promise<number> => {
    const admin = clients[0]!;
    return admin.lLen(keyspace('x', 'semaphore', name).key('queue'));
  };

  // A short lease: waiters re-check every few hundred ms, also during a fault.
  const pair = async (name: string) => {
    const holderClient = await clientNamed('holder');
    const waiterClient = await clientNamed('waiter');
    const options = { limit: 1, leaseTtlMs: 3_000 };
    return {
      holderClient,
      waiterClient,
      holder: await Semaphore.create(holderClient, name, options),
      waiter: await Semaphore.create(waiterClient, name, options),
    };
  };

  it('a waiter whose connections are cut while new ones are refused gets the permit once the server is back', async () => {
    const name = uniquePrefix();
    const { holder, waiter } = await pair(name);
    const held = await holder.acquire();
    const waiting = settle(waiter.acquire({ timeoutMs: 20_000 }));
    await until(async () => (await waiterCount(name)) === 1);
    const outage = await redis.outage(1_000, { name: 'waiter' });
    await held.release();
    await outage.ended;
    const got = await waiting;
    expect(got.ok).toBe(true);
    if (got.ok) await got.value.release();
  });

  it('a kill while a re-check is in flight does not reject the wait', async () => {
    const name = uniquePrefix();
    const { holder, waiter, waiterClient } = await pair(name);
    const held = await holder.acquire();
    const waiting = settle(waiter.acquire({ timeoutMs: 20_000 }));
    await until(async () => (await waiterCount(name)) === 1);
    await redis.cutNextCall(waiterClient, { name: 'waiter' });
    await held.release();
    const got = await waiting;
    expect(got.ok).toBe(true);
    if (got.ok) await got.value.release();
  });

  it('a release whose connection is cut in flight is sent again, and the permit is free', async () => {
    const { holder, holderClient } = await pair(uniquePrefix());
    const held = await holder.acquire();
    expect(await holder.available()).toBe(0);
    const cut = redis.cutNextCall(holderClient, { name: 'holder' });
    await held.release();
    await cut;
    expect(await holder.available()).toBe(1);
  });

  it('a release whose reply was lost is sent again and resolves: the resend finds it released', async () => {
    const { holder, holderClient } = await pair(uniquePrefix());
    const held = await holder.acquire();
    const lost = loseNextReply(holderClient);
    await held.release();
    await lost;
    expect(held.signal.aborted).toBe(false);
    expect(await holder.available()).toBe(1);
  });

  it('tryAcquire fails fast with RedisUnavailableError, the fault as its cause', async () => {
    const { waiter } = await pair(uniquePrefix());
    const outage = await redis.outage(60_000, { name: 'waiter' });
    try {
      const error = await waiter.tryAcquire().catch((e: unknown) => e);
      expect(RedisUnavailableError.isInstance(error)).toBe(true);
      expect((error as Error).cause).toBeInstanceOf(Error);
    } finally {
      await outage.end();
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
