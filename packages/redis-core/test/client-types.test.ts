import { clusterNodes, redisUrl, uniquePrefix } from '@x/testing';
import { createClient as createClient6, createCluster as createCluster6 } from 'redis';
import { createClient as createClient5, createCluster as createCluster5 } from 'redis5';
import { defineScript, keyspace, type RedisClientLike } from '../src';

const incr = defineScript({ name: 'test.incr', keys: ['n'], source: `return redis.call('INCR', KEYS[1])` });

// The structural client type must accept every client shape a user may hold; this file does not
// compile (pnpm typecheck) if one of these assignments stops fitting.
describe('RedisClientLike', () => {
  const rootNodes = () => clusterNodes().map((n) => ({ url: `redis://${n}` }));
  const shapes: Array<[string, () => Promise<{ client: RedisClientLike; close(): Promise<unknown> }>]> = [
    ['node-redis v6 client, RESP3', async () => wrap(await createClient6({ url: redisUrl(), RESP: 3 }).on('error', () => 0).connect())],
    ['node-redis v6 client, RESP2', async () => wrap(await createClient6({ url: redisUrl(), RESP: 2 }).on('error', () => 0).connect())],
    ['node-redis v6 cluster', async () => {
      const c = createCluster6({ rootNodes: rootNodes() }).on('error', () => 0);
      await c.connect();
      return wrap(c);
    }],
    ['node-redis v5 client, RESP2', async () => wrap(await createClient5({ url: redisUrl() }).on('error', () => 0).connect())],
    ['node-redis v5 client, RESP3', async () => wrap(await createClient5({ url: redisUrl(), RESP: 3 }).on('error', () => 0).connect())],
    ['node-redis v5 cluster', async () => {
      const c = createCluster5({ rootNodes: rootNodes() }).on('error', () => 0);
      await c.connect();
      return wrap(c);
    }],
  ];

  it.each(shapes)('accepts a %s and runs a script through it', async (_, open) => {
    const { client, close } = await open();
    try {
      const key = keyspace(uniquePrefix(), 'types', 'n').key('n');
      expect(await incr.run(client, [key])).toBe(1);
      expect(await incr.run(client, [key])).toBe(2);
    } finally {
      await close();
    }
  });
});

function wrap<C extends RedisClientLike & { close(): Promise<unknown> }>(client: C) {
  return { client: client as RedisClientLike, close: () => client.close() };
}

// ioredis and node-redis pools fit the same type (this does not compile if they stop fitting).
describe('RedisClientLike (ioredis, pools)', () => {
  it('accepts an ioredis Redis and Cluster and a node-redis pool', async () => {
    const { connectIoredis, connectPool } = await import('@x/testing');
    const io = await connectIoredis('standalone');
    const pool = await connectPool();
    try {
      const clients: RedisClientLike[] = [io, pool];
      const key = keyspace(uniquePrefix(), 'types', 'n').key('n');
      for (const client of clients) await incr.run(client, [key]);
      expect(await incr.run(io, [key])).toBe(3);
      const cluster: RedisClientLike = null as unknown as import('ioredis').Cluster;
      expect(cluster).toBeNull();
    } finally {
      io.disconnect();
      await pool.close();
    }
  });
});
