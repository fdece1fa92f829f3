import { startCluster } from './cluster';
import { startRedis } from './server';

/** jest globalSetup: one standalone Redis and one local cluster for the whole run. */
export default async function globalSetup(): Promise<void> {
  const [redis, cluster] = await Promise.all([startRedis(), startCluster()]);
  process.env.REDIS_URL = redis.url;
  process.env.REDIS_CLUSTER_NODES = cluster.nodes.join(',');
  (globalThis as Record<string, unknown>).__X_TEST_SERVERS__ = [redis, cluster];
}
