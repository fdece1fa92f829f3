import { settle, startFaultyRedis, uniquePrefix, type FaultyRedis } from '@x/testing';
import { WakeBus } from '@x/redis-core';
import { createClient } from 'redis';
import { AutoResetEvent, ManualResetEvent, RedisUnavailableError } from '../src';
import { until } from './helpers';

// Faults are injected into a server of this file's own: refusing connections or pausing the
// run's shared server would fail the suites running beside it.
describe('events through server faults', () => {
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

  it('AutoResetEvent: a kill while the woken waiter takes its signal does not reject the wait, and the signal is taken once', async () => {
    const name = uniquePrefix();
    const waiterClient = await clientNamed('waiter');
    const setter = new AutoResetEvent(await clientNamed('setter'), name);
    const waiting = settle(new AutoResetEvent(waiterClient, name).wait({ timeoutMs: 20_000 }));
    await until(async () => (await setter.waiters()) === 1);
    const cut = redis.cutNextCall(waiterClient, { name: 'waiter' });
    expect(await setter.set()).toBe(true);
    await cut;
    expect((await waiting).ok).toBe(true);
    expect(await setter.pending()).toBe(0);
  });

  it('ManualResetEvent: a kill while a re-check is in flight does not reject the wait', async () => {
    const name = uniquePrefix();
    const waiterClient = await clientNamed('waiter');
    // A short ttl: the waiter re-checks every 300 ms.
    const setter = new ManualResetEvent(await clientNamed('setter'), name, { ttlMs: 900 });
    const waiting = settle(new ManualResetEvent(waiterClient, name, { ttlMs: 900 }).wait({ timeoutMs: 20_000 }));
    await redis.cutNextCall(waiterClient, { name: 'waiter' });
    await setter.set();
    expect((await waiting).ok).toBe(true);
  });

  it('a wait whose connections are cut while new ones are refused returns once the server is back and the event is set', async () => {
    const name = uniquePrefix();
    const setter = new AutoResetEvent(await clientNamed('setter'), name);
    const waiting = settle(new AutoResetEvent(await clientNamed('waiter'), name).wait({ timeoutMs: 20_000 }));
    await until(async () => (await setter.waiters()) === 1);
    const outage = await redis.outage(1_000, { name: 'waiter' });
    await setter.set();
    await outage.ended;
    expect((await waiting).ok).toBe(true);
  });

  it('set fails fast with RedisUnavailableError, the fault as its cause', async () => {
    const event = new AutoResetEvent(await clientNamed('victim'), uniquePrefix());
    const outage = await redis.outage(60_000, { name: 'victim' });
    try {
      const error = await event.set().catch((e: unknown) => e);
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
