export { startRedis, type RedisServer } from './server';
export { startCluster, type RedisCluster } from './cluster';
export { startSentinel, type RedisSentinel } from './sentinel';
export {
  connect,
  connectIoredis,
  connectPool,
  OTHER_CLIENTS,
  endClient,
  CLIENT,
  type ClientLibrary,
  connectionCount,
  onEveryNode,
  uniquePrefix,
  redisUrl,
  adminUrl,
  clusterNodes,
  TARGETS,
  type Target,
  type TestClient,
} from './clients';
export { spawnWorker, type Worker } from './crash';
export { freePort } from './process';
export { settle, until, type Settled } from './eventually';
export { recordChannels, type ChannelRecorder, type Recorded } from './tracing';
export { startFaultyRedis, dropConnections, loseNextReply, type FaultyRedis, type Fault } from './faults';
