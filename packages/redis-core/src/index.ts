export type { RedisClientLike, NodeRedisLike, IoRedisLike, ScriptCallOptions, SubscriberLike } from './client';
export {
  adaptClient,
  assertClient,
  configureRedisClient,
  closeRedisResources,
  onCloseResources,
  type AdaptedClient,
  type ClientKind,
  type ConfigureClientOptions,
  type OwnConnection,
  type SubscriberPlan,
} from './clients';
export { XRedisError, InvalidArgumentError, hasCode } from './errors';
export { RedisUnavailableError, isTransient, Backoff } from './faults';
export {
  assertInteger,
  assertDurationMs,
  assertTimeoutMs,
  assertName,
  assertPrefix,
  assertSignal,
  MAX_NAME_BYTES,
  MAX_DURATION_MS,
} from './validate';
export { keyspace, type Keyspace } from './keyspace';
export { defineScript, normalizeReply, type Script, type ScriptErrorMap } from './script';
export { LUA_HELPERS } from './lua';
export { WakeBus, BROADCAST, type WakeListener } from './wake-bus';
export { waitFor, type WaitSpec, type Attempt } from './wait';
export { LeaseKeeper, leaseDeadline, type LeaseSpec, type KeptLease } from './lease-keeper';
export { GrantQueue, type GrantQueueOptions, type GrantRequest, type GrantHolder } from './grant-queue';
export { Grant, grantTracing, type GrantBackend, type GrantTracing, type LeaseHandle } from './grant';
export { GRANT_QUEUE_LUA } from './grant-queue-lua';
export {
  operation,
  pointEvent,
  tracingChannels,
  type Operation,
  type OperationSpec,
  type OperationContext,
  type Outcome,
  type PointEvent,
} from './tracing';
export {
  scanKeys,
  scanNames,
  nameOfKey,
  globEscape,
  describeGrantQueue,
  releaseGrantByToken,
  dropDeadWaiter,
  type Describe,
  type DescribeOptions,
  type ListOptions,
  type GrantQueueState,
  type DescribedHolder,
  type DescribedWaiter,
} from './describe';
