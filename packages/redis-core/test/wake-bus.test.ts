import { TARGETS, connect, connectionCount, onEveryNode, uniquePrefix, type TestClient } from '@x/testing';
import { LUA_HELPERS, WakeBus, defineScript, keyspace, waitFor } from '../src';

// A gate: `open` sets a key and broadcasts a wake-up; `check` reads the key.
const open = defineScript({
  name: 'test.open',
  keys: ['gate'],
  source: LUA_HELPERS + `redis.call('SET', KEYS[1], '1') wake(ARGV[1], ARGV[2]) return 1`,
});
const check = defineScript({ name: 'test.check', keys: ['gate'], source: `return redis.call('EXISTS', KEYS[1])` });

describe.each(TARGETS)('WakeBus on %s', (target) => {
  let client: TestClient;
  beforeEach(async () => {
    client = await connect(target);
  });
  afterEach(async () => {
    await WakeBus.close(client);
    await client.close();
  });

  it('wakes 10,000 waiters in one process over one extra connection', async () => {
    const prefix = uniquePrefix();
    // A named client of its own, so that other suites' connections do not count.
    const name = `bus-${prefix}`;
    await client.close();
    client = await connect(target, { name });
    const gates = Array.from({ length: 50 }, (_, i) => keyspace(prefix, 'gate', `g${i}`));
    const before = await connectionCount(target, name);
    const attempts = { count: 0 };
    const waiters = Array.from({ length: 10_000 }, (_, i) => {
      const ks = gates[i % gates.length]!;
      return waitFor<number>({
        client,
        channel: ks.channel,
        target: `w${i}`,
        timeoutMs: 120_000,
        timeoutError: () => new Error('timed out'),
        attempt: async () => {
          attempts.count += 1;
          return (await check.run(client, [ks.key('gate')])) === 1 ? { done: i } : { retryInMs: 600_000 };
        },
      });
    });
    // Every waiter attempted, subscribed, attempted again, and is now parked on the bus.
    while (attempts.count < 20_000) await new Promise((r) => setTimeout(r, 20));
    expect(WakeBus.for(client).listenerCount).toBe(10_000);
    // One subscriber connection (on a cluster: one per shard, three here).
    expect((await connectionCount(target, name)) - before).toBe(target === 'cluster' ? 3 : 1);
    for (const ks of gates) await open.run(client, [ks.key('gate')], [ks.channel, '* open']);
    const results = await Promise.all(waiters);
    expect(results.sort((a, b) => a - b)).toEqual(Array.from({ length: 10_000 }, (_, i) => i));
    // Woken by the message, not by the (10 minute) re-check timer: two attempts each before, one after.
    expect(attempts.count).toBe(30_000);
    expect(WakeBus.for(client).listenerCount).toBe(0);
  });

  it('delivers a message addressed to one waiter to that waiter alone', async () => {
    const ks = keyspace(uniquePrefix(), 'gate', 'one');
    const got: Array<[string, string | null]> = [];
    const bus = WakeBus.for(client);
    const stopA = await bus.listen(ks.channel, 'a', (m) => got.push(['a', m]));
    const stopB = await bus.listen(ks.channel, 'b', (m) => got.push(['b', m]));
    await open.run(client, [ks.key('gate')], [ks.channel, 'b grant 7']);
    await open.run(client, [ks.key('gate')], [ks.channel, '* all']);
    const until = Date.now() + 10_000;
    while (got.length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expect(got).toEqual([
      ['b', 'grant 7'],
      ['a', 'all'],
      ['b', 'all'],
    ]);
    await stopA();
    await stopB();
  });

  it('re-subscribes after its connection is killed and tells listeners to re-check', async () => {
    const ks = keyspace(uniquePrefix(), 'gate', 'reconnect');
    const got: Array<string | null> = [];
    const bus = WakeBus.for(client);
    const stop = await bus.listen(ks.channel, 'me', (m) => got.push(m));
    // Kill every pub/sub connection on the server(s): ours is among them.
    await onEveryNode(target, ['CLIENT', 'KILL', 'TYPE', 'pubsub']);
    const until = Date.now() + 15_000;
    while (!got.includes(null) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(got).toContain(null);
    // The subscription is back: a message published now arrives.
    let delivered = false;
    while (!delivered && Date.now() < until) {
      await open.run(client, [ks.key('gate')], [ks.channel, 'me after']);
      await new Promise((r) => setTimeout(r, 50));
      delivered = got.includes('after');
    }
    expect(delivered).toBe(true);
    await stop();
  });
});
