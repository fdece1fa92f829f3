export {
  LeasedKeyQueue,
  type LeasedKeyQueueOptions,
  type InFlightPolicy,
  type PutOptions,
  type PutResult,
  type GetOptions,
  type ReleaseOptions,
  type ReleaseResult,
  type LeasedItem,
  type DeadLetter,
  type DeadLettersOptions,
  type RedriveOptions,
} from './queue';
export { QueueWorker, type ProcessHandler, type ProcessOptions, type BackoffOptions, type WorkItem } from './worker';
export type { Lease } from './lease';
export { jsonCodec, type Codec } from './codec';
export {
  KeyAlreadyInFlightError,
  InvalidLeaseError,
  LeaseAlreadyAcknowledgedError,
  QueueClosedError,
  QueueTimeoutError,
} from './errors';
export { closeRedisResources, configureRedisClient, InvalidArgumentError, RedisUnavailableError, XRedisError } from '@x/redis-core';
export { describe, type QueueDescription } from './describe';
