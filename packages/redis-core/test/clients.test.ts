import { TARGETS, connectIoredis, connectPool, connectionCount, redisUrl, startSentinel, uniquePrefix, type RedisSentinel, type Target } from '@x/testing';
import type { Cluster, Redis } from 'ioredis';
import { createClient } from 'redis';
import {
  InvalidArgumentError,
  LUA_HELPERS,
  LeaseKeeper,
  WakeBus,
  adaptClient,
  assertClient,
  closeRedisResources,
  configureRedisClient,
  defineScript,
  keyspace,
  waitFor,
  type RedisClientLike,
} from '../src';

const incr = defineScript({ name: 'test.clients.incr', keys: ['n'], source: `return redis.call('INCR', KEYS[1])` });
const open = defineScript({
  name: 'test.clients.open',
  keys: ['gate'],
  source: LUA_HELPERS + `redis.call('SET', KEYS[1], ARGV[3]) wake(ARGV[1], ARGV[2]) return 1`,
});
const check = defineScript({ name: 'test.clients.check', keys: ['gate'], source: `return redis.call('GET', KEYS[1])` });
const lease = defineScript({
  name: 'test.clients.lease',
  keys: ['lease'],
  source: `redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) local t = redis.call('TIME') return tonumber(t[1]) * 1000`,
});
const failing = defineScript({ name: 'test.clients.fail', keys: ['k'], source: `return redis.error_reply('GATE_SHUT the gate is shut')` });

/** Waits for the gate's value, woken by the bus; the re-check timer is too long to matter. */
function waitForGate(client: RedisClientLike, gate: string, channel: string, signal?: AbortSignal): Promise<string> {
  return waitFor<string>({
    client,
    signal,
    channel,
    target: 'w',
    timeoutMs: 30_000,
    timeoutError: () => new Error('not woken'),
    attempt: async () => {
      const value = await check.run(client, [gate]);
      return typeof value === 'string' ? { done: value } : { retryInMs: 600_000 };
    },
  });
}

async function exercise(client: RedisClientLike): Promise<void> {
  const ks = keyspace(uniquePrefix(), 'clients', 'gate');
  // Scripts: EVALSHA, EVAL on NOSCRIPT, the script's errors mapped.
  expect(await incr.run(client, [ks.key('n')])).toBe(1);
  expect(await incr.run(client, [ks.key('n')])).toBe(2);
  await expect(failing.run(client, [ks.key('k')])).rejects.toMatchObject({ code: 'GATE_SHUT', message: 'the gate is shut' });
  // A waiter woken by a script's wake-up.
  const waiting = waitForGate(client, ks.key('gate'), ks.channel);
  while (WakeBus.for(client).listenerCount === 0) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 50));
  await open.run(client, [ks.key('gate')], [ks.channel, '* open', 'opened']);
  expect(await waiting).toBe('opened');
  // The lease keeper renews through the same client.
  let renewals = 0;
  const lost: string[] = [];
  const kept = LeaseKeeper.for(client).keep({
    ttlMs: 600,
    sentAt: performance.now(),
    renew: async () => {
      renewals += 1;
      return Number(await lease.run(client, [ks.key('lease')], ['me', 600]));
    },
    onLost: (why) => lost.push(why),
  });
  while (renewals < 2) await new Promise((r) => setTimeout(r, 20));
  kept.stop();
  expect(lost).toEqual([]);
}

describe.each(TARGETS)('an ioredis client on %s', (target: Target) => {
  let client: Redis | Cluster;
  beforeEach(async () => {
    client = await connectIoredis(target);
  });
  afterEach(async () => {
    await closeRedisResources(client);
    client.disconnect();
  });

  it('runs scripts, wakes waiters and keeps leases', async () => {
    expect(adaptClient(client).kind).toBe(target === 'cluster' ? 'ioredis-cluster' : 'ioredis');
    await exercise(client);
  });

  it('subscribes over one connection of its own (one per shard on a cluster), closed by closeRedisResources', async () => {
    const name = `io-${uniquePrefix()}`;
    client.disconnect();
    client = await connectIoredis(target, { name });
    const prefix = uniquePrefix();
    const gates = Array.from({ length: 12 }, (_, i) => keyspace(prefix, 'clients', `g${i}`));
    // The client's own connections to every node it will talk to, opened before counting.
    for (const ks of gates) await check.run(client, [ks.key('gate')]);
    // ioredis names a cluster's sharded subscriber connections after the client's own name.
    const count = async () => (await connectionCount(target, name)) + (await connectionCount(target, `ioredis-cluster(ssubscriber):${name}`));
    const before = await count();
    const waiters = gates.map((ks) => waitForGate(client, ks.key('gate'), ks.channel));
    while (WakeBus.for(client).listenerCount < gates.length) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50));
    const opened = await count();
    for (const ks of gates) await open.run(client, [ks.key('gate')], [ks.channel, '* open', ks.channel]);
    expect(await Promise.all(waiters)).toEqual(gates.map((ks) => ks.channel));
    // On a cluster: the sharded subscriber group's connection per shard, plus the duplicate's own
    // connection that reads the slot map.
    expect(opened - before).toBe(target === 'cluster' ? 4 : 1);
    await closeRedisResources(client);
    const until = Date.now() + 10_000;
    while ((await count()) > before && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(await count()).toBe(before);
  });

  it('releases its subscriber and keepers when the ioredis client quits', async () => {
    const ks = keyspace(uniquePrefix(), 'clients', 'quit');
    const lost: string[] = [];
    LeaseKeeper.for(client).keep({ ttlMs: 60_000, sentAt: performance.now(), onLost: (why) => lost.push(why) });
    const stop = new AbortController();
    const waiting = waitForGate(client, ks.key('gate'), ks.channel, stop.signal).catch(() => 'stopped');
    while (WakeBus.for(client).listenerCount === 0) await new Promise((r) => setTimeout(r, 10));
    await client.quit();
    const until = Date.now() + 10_000;
    while (lost.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(lost).toEqual(['expired']);
    expect(WakeBus.for(client).listenerCount).toBe(0);
    stop.abort();
    expect(await waiting).toBe('stopped');
  });
});

describe('a node-redis pool', () => {
  it('runs scripts, and waiters are woken over a duplicate of one of its clients', async () => {
    const pool = await connectPool();
    try {
      expect(adaptClient(pool).kind).toBe('node-redis-pool');
      await exercise(pool);
    } finally {
      await closeRedisResources(pool);
      await pool.close();
    }
  });

  it('subscribes on the connection configureRedisClient names', async () => {
    const pool = await connectPool({ RESP: 2 });
    const name = `pool-${uniquePrefix()}`;
    let opened = 0;
    configureRedisClient(pool, {
      subscriber: () => {
        opened += 1;
        return createClient({ url: redisUrl(), name }).on('error', () => undefined);
      },
    });
    try {
      await exercise(pool);
      expect(opened).toBe(1);
      expect(await connectionCount('standalone', name)).toBe(1);
    } finally {
      await closeRedisResources(pool);
      await pool.close();
    }
  });
});

describe('assertClient', () => {
  it('names what an unknown object lacks', () => {
    expect(() => assertClient({})).toThrow(InvalidArgumentError);
    expect(() => assertClient({})).toThrow(/neither evalSha\(\) \(node-redis\) nor evalsha\(\) \(ioredis\)/);
    expect(() => assertClient(null)).toThrow(InvalidArgumentError);
    expect(() => assertClient('redis://localhost')).toThrow(/got string/);
  });

  it('names the missing duplicate() of a node-redis-like client, and how to do without it', () => {
    const half = { evalSha: async () => 1, eval: async () => 1 };
    expect(() => assertClient(half)).toThrow(/no duplicate\(\).*configureRedisClient/);
    expect(() => assertClient({ evalsha: async () => 1, eval: async () => 1 })).toThrow(/ioredis but has no duplicate\(\)/);
  });

  it('rejects a subscriber option that is not a function', () => {
    const half = { evalSha: async () => 1, eval: async () => 1, duplicate: () => ({}) };
    expect(() => configureRedisClient(half, { subscriber: 'x' as never })).toThrow(InvalidArgumentError);
  });

  it('adapts a client once: the same seam for the same client', async () => {
    const client = await connectIoredis('standalone');
    try {
      expect(adaptClient(client)).toBe(adaptClient(client));
      expect(adaptClient(adaptClient(client))).toBe(adaptClient(client));
    } finally {
      client.disconnect();
    }
  });
});

type CreateSentinel = (options: { name: string; sentinelRootNodes: Array<{ host: string; port: number }> }) => {
  on(event: string, listener: () => void): unknown;
  connect(): Promise<unknown>;
  close(): Promise<unknown>;
};
describe.each<[string, () => Promise<CreateSentinel>]>([
  ['v6', () => import('redis').then((m) => m.createSentinel as unknown as CreateSentinel)],
  ['v5', () => import('redis5').then((m) => m.createSentinel as unknown as CreateSentinel)],
])('a node-redis %s sentinel', (_, load) => {
  let sentinel: RedisSentinel;
  beforeAll(async () => {
    sentinel = await startSentinel();
  });
  afterAll(async () => {
    await sentinel.stop();
  });

  it('runs scripts, and waiters are woken through its own pub/sub connection', async () => {
    const createSentinel = await load();
    const client = createSentinel({ name: sentinel.name, sentinelRootNodes: sentinel.sentinelRootNodes });
    client.on('error', () => undefined);
    await client.connect();
    try {
      expect(adaptClient(client as unknown as RedisClientLike).kind).toBe('node-redis-sentinel');
      await exercise(client as unknown as RedisClientLike);
    } finally {
      await closeRedisResources(client as unknown as RedisClientLike);
      await client.close();
    }
  });
});
