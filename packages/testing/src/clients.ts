import { randomBytes } from 'node:crypto';
import { createClient, createCluster } from 'redis';

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

/** Connects a fresh client to `target`; RESP3 unless `RESP: 2` is asked for. */
export async function connect(target: Target = 'standalone', options: { RESP?: 2 | 3; name?: string } = {}): Promise<TestClient> {
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
