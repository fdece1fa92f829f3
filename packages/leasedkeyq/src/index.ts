export {
  LeasedKeyQueue,
  type LeasedKeyQueueOptions,
  type InFlightPolicy,
  type PutOptions,
  type PutResult,
  type GetOptions,
  type ReleaseOptions,
  type LeasedItem,
} from './queue';
export type { Lease } from './lease';
export { jsonCodec, type Codec } from './codec';
export {
  KeyAlreadyInFlightError,
  InvalidLeaseError,
  LeaseAlreadyAcknowledgedError,
  QueueClosedError,
  QueueTimeoutError,
} from './errors';
export { InvalidArgumentError, RedisUnavailableError, XRedisError } from '@x/redis-core';
