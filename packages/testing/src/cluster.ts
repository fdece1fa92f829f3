import { createClient } from 'redis';
import { hasRedisServer, spawnRedisServer, type RedisProcess } from './process';

/** A local Redis Cluster: `nodes` as `host:port` strings. */
export interface RedisCluster {
  nodes: string[];
  stop(): Promise<void>;
}

const SLOTS = 16_384;

/**
 * Starts a real Redis Cluster of three masters from `redis-server` processes on free ports, or
 * uses `REDIS_CLUSTER_NODES` (comma-separated `host:port`) when set.
 */
export async function startCluster(masters = 3): Promise<RedisCluster> {
  const fromEnv = process.env.REDIS_CLUSTER_NODES;
  if (fromEnv) return { nodes: fromEnv.split(','), stop: async () => undefined };
  if (!hasRedisServer()) {
    throw new Error(
      'No Redis Cluster for the tests: set REDIS_CLUSTER_NODES, or put redis-server on the PATH ' +
        '(Debian/Ubuntu: apt-get install -y redis-server).',
    );
  }
  const servers: RedisProcess[] = [];
  try {
    for (let i = 0; i < masters; i++) {
      servers.push(await spawnRedisServer(['--cluster-enabled', 'yes', '--cluster-node-timeout', '5000', '--cluster-config-file', 'nodes.conf']));
    }
    const clients = await Promise.all(
      servers.map((s) => createClient({ socket: { host: '127.0.0.1', port: s.port } }).on('error', () => undefined).connect()),
    );
    try {
      const per = Math.ceil(SLOTS / masters);
      await Promise.all(
        clients.map((c, i) => c.sendCommand(['CLUSTER', 'ADDSLOTSRANGE', String(i * per), String(Math.min(SLOTS, (i + 1) * per) - 1)])),
      );
      const first = clients[0]!;
      for (const s of servers.slice(1)) await first.sendCommand(['CLUSTER', 'MEET', '127.0.0.1', String(s.port)]);
      const until = Date.now() + 30_000;
      for (;;) {
        const infos = await Promise.all(clients.map((c) => c.sendCommand(['CLUSTER', 'INFO']) as Promise<string>));
        if (infos.every((info) => String(info).includes('cluster_state:ok') && String(info).includes(`cluster_known_nodes:${masters}`))) break;
        if (Date.now() > until) throw new Error('local cluster did not reach cluster_state:ok in 30 s');
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  } catch (error) {
    await Promise.all(servers.map((s) => s.stop()));
    throw error;
  }
  return {
    nodes: servers.map((s) => `127.0.0.1:${s.port}`),
    stop: async () => {
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
}
