import { randomBytes } from 'node:crypto';
import { Cluster as IoCluster, Redis as IoRedis } from 'ioredis';
import { createClient, createCluster, createClientPool } from 'redis';

/** Where a suite runs: a standalone server or the local three-master cluster. */
export type Target = 'standalone' | 'cluster';

/**
 * The targets of this run, for `describe.each(TARGETS)`: both, unless `X_TARGETS` names a subset
 * (`X_TARGETS=standalone` runs a suite against the standalone server only, e.g. as an ACL user).
 */
export const TARGETS: Target[] = targetsFromEnv(process.env.X_TARGETS);

function targetsFromEnv(value: string | undefined): Target[] {
  if (!value) return ['standalone', 'cluster'];
  const names = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const name of names) {
    if (name !== 'standalone' && name !== 'cluster') throw new Error(`X_TARGETS: unknown target "${name}" (standalone, cluster)`);
  }
  return names as Target[];
}

/**
 * A connected client as the tests use it. A cluster is typed like a client: the tests only call
 * commands that take a key, which both route the same way.
 */
export type TestClient = ReturnType<typeof createClient>;

/** The URL of the test run's standalone Redis (set by the global setup). */
export function redisUrl(): string {
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('REDIS_URL is not set: run the tests through jest with the @x/testing global setup');
  return url;
}

/**
 * The URL the admin helpers (`connectionCount`, `onEveryNode`) use on the standalone server:
 * `REDIS_ADMIN_URL` when set (a suite run as a restricted ACL user keeps admin rights here),
 * else `REDIS_URL`.
 */
export function adminUrl(): string {
  return process.env.REDIS_ADMIN_URL || redisUrl();
}

/** The `host:port` list of the test run's cluster (set by the global setup). */
export function clusterNodes(): string[] {
  const nodes = process.env.REDIS_CLUSTER_NODES;
  if (!nodes) throw new Error('REDIS_CLUSTER_NODES is not set: run the tests through jest with the @x/testing global setup');
  return nodes.split(',');
}

/** The client library a suite runs on: `X_CLIENT=ioredis` runs it on ioredis (default node-redis). */
export type ClientLibrary = 'node-redis' | 'ioredis';

/** The client library of this run, from `X_CLIENT`. */
export const CLIENT: ClientLibrary = clientFromEnv(process.env.X_CLIENT);

function clientFromEnv(value: string | undefined): ClientLibrary {
  if (!value || value === 'node-redis') return 'node-redis';
  if (value === 'ioredis') return 'ioredis';
  throw new Error(`X_CLIENT: unknown client "${value}" (node-redis, ioredis)`);
}

/**
 * Connects a fresh client to `target`; RESP3 unless `RESP: 2` is asked for. Under
 * `X_CLIENT=ioredis` the primitives get an ioredis client instead (see {@link connectIoredis}),
 * while the test's own calls (`client.get(...)`, `client.close()`) still reach node-redis.
 */
export async function connect(target: Target = 'standalone', options: { RESP?: 2 | 3; name?: string } = {}): Promise<TestClient> {
  if (CLIENT === 'ioredis') return ioredisTestClient(target, options);
  return connectNodeRedis(target, options);
}

async function connectNodeRedis(target: Target, options: { RESP?: 2 | 3; name?: string }): Promise<TestClient> {
  const RESP = options.RESP ?? 3;
  const { name } = options;
  if (target === 'standalone') {
    const client = createClient({ url: redisUrl(), RESP, ...(name ? { name } : {}) });
    client.on('error', () => undefined);
    return (await client.connect()) as unknown as TestClient;
  }
  const cluster = createCluster({
    rootNodes: clusterNodes().map((node) => ({ url: `redis://${node}` })),
    RESP,
    ...(name ? { defaults: { name } } : {}),
  });
  cluster.on('error', () => undefined);
  await cluster.connect();
  return cluster as unknown as TestClient;
}

/** A connected ioredis `Redis` (standalone) or `Cluster`, as a user would hold it. */
export async function connectIoredis(target: Target = 'standalone', options: { name?: string } = {}): Promise<IoRedis | IoCluster> {
  const name = options.name ? { connectionName: options.name } : {};
  if (target === 'standalone') {
    const url = new URL(redisUrl());
    const client = new IoRedis({
      host: url.hostname,
      port: Number(url.port || 6379),
      ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      lazyConnect: true,
      ...name,
    });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  }
  const nodes = clusterNodes().map((node) => {
    const [host = '127.0.0.1', port = '0'] = node.split(':');
    return { host, port: Number(port) };
  });
  const cluster = new IoCluster(nodes, { lazyConnect: true, redisOptions: { ...name } });
  cluster.on('error', () => undefined);
  await cluster.connect();
  return cluster;
}

/** A connected node-redis pool of the standalone server (it has no `duplicate()`). */
export async function connectPool(options: { RESP?: 2 | 3 } = {}) {
  const pool = createClientPool({ url: redisUrl(), RESP: options.RESP ?? 3 }, { minimum: 1, maximum: 4 });
  pool.on('error', () => undefined);
  await pool.connect();
  return pool;
}

// What the primitives reach on an ioredis test client; everything else goes to node-redis.
const IOREDIS_MEMBERS = new Set(['evalsha', 'eval', 'duplicate', 'isCluster', 'status', 'options', 'on', 'once', 'off', 'removeListener', 'emit', 'startupNodes']);
const HIDDEN = new Set(['evalSha', 'EVALSHA', 'EVAL', 'masters', 'sSubscribe', 'execute', 'getMasterNode']);

/**
 * A test client under `X_CLIENT=ioredis`: the primitives see an ioredis client (`evalsha`,
 * `duplicate`, ...), the test's own commands go to a node-redis client of the same target, and
 * `close()`/`destroy()` end both (ioredis's 'end' releases what the primitives opened).
 */
async function ioredisTestClient(target: Target, options: { RESP?: 2 | 3; name?: string }): Promise<TestClient> {
  const io = await connectIoredis(target, options.name ? { name: options.name } : {});
  // The test's own connection stays unnamed: a suite that counts named connections counts the
  // primitives' (the ioredis client's and what the library opened for it).
  const node = (await connectNodeRedis(target, { ...(options.RESP ? { RESP: options.RESP } : {}) })) as unknown as Record<string | symbol, unknown>;
  const end = async (how: 'close' | 'destroy') => {
    if (how === 'close') await io.quit().catch(() => undefined);
    else io.disconnect();
    await (node[how] as () => Promise<unknown>).call(node);
  };
  const proxy = new Proxy(io as unknown as object, {
    get(target_, prop) {
      if (prop === 'close' || prop === 'quit') return () => end('close');
      if (prop === 'destroy' || prop === 'disconnect') return () => end('destroy');
      if (typeof prop === 'string' && HIDDEN.has(prop)) return undefined;
      if (typeof prop === 'string' && IOREDIS_MEMBERS.has(prop)) {
        const value = (io as unknown as Record<string, unknown>)[prop];
        return typeof value === 'function' ? value.bind(io) : value;
      }
      const value = node[prop];
      return typeof value === 'function' ? value.bind(node) : value;
    },
    has(_, prop) {
      if (typeof prop === 'string' && HIDDEN.has(prop)) return false;
      return prop in (io as object) || prop in node;
    },
  });
  return proxy as unknown as TestClient;
}

/** A random key prefix: each test works under its own, and no test flushes the server. */
export function uniquePrefix(): string {
  return `t${randomBytes(6).toString('hex')}`;
}

/**
 * Number of client connections the server(s) of `target` see right now; with `name`, only those
 * of clients connected under that name (a `duplicate()` keeps its parent's name).
 */
export async function connectionCount(target: Target = 'standalone', name?: string): Promise<number> {
  const urls = target === 'standalone' ? [adminUrl()] : clusterNodes().map((n) => `redis://${n}`);
  let total = 0;
  for (const url of urls) {
    const admin = createClient({ url });
    admin.on('error', () => undefined);
    await admin.connect();
    try {
      const list = String(await admin.sendCommand(['CLIENT', 'LIST']));
      const lines = list.split('\n').filter((line) => line.trim() !== '');
      // Minus this admin connection itself.
      total += name ? lines.filter((line) => line.includes(` name=${name} `)).length : lines.length - 1;
    } finally {
      await admin.close();
    }
  }
  return total;
}

/** Runs one command on every node of `target` (CLIENT PAUSE, CONFIG SET, ...). */
export async function onEveryNode(target: Target, args: string[]): Promise<void> {
  const urls = target === 'standalone' ? [adminUrl()] : clusterNodes().map((n) => `redis://${n}`);
  await Promise.all(
    urls.map(async (url) => {
      const admin = createClient({ url });
      admin.on('error', () => undefined);
      await admin.connect();
      try {
        await admin.sendCommand(args);
      } finally {
        await admin.close();
      }
    }),
  );
}

/**
 * The clients besides node-redis that every package's smoke test runs on: ioredis standalone and
 * cluster, and a node-redis pool (no `duplicate()`). Typed loosely: each is a `RedisClientLike`.
 */
export const OTHER_CLIENTS: Array<[string, () => Promise<any>]> = [
  ['ioredis on standalone', () => connectIoredis('standalone')],
  ['ioredis on cluster', () => connectIoredis('cluster')],
  ['a node-redis pool', () => connectPool()],
];

/** Closes a client of {@link OTHER_CLIENTS} (after the test released what the library opened). */
export async function endClient(client: any): Promise<void> {
  if ('isCluster' in client) client.disconnect();
  else await client.close();
}
