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
export { InvalidArgumentError, XRedisError } from '@x/redis-core';
export { describe, type QueueDescription } from './describe';
