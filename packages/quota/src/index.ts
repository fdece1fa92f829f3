export {
  Quota,
  type QuotaOptions,
  type IdempotencyOptions,
  type ReserveOptions,
  type CommitOptions,
  type AllocateChunkOptions,
  type ConsumeChunkOptions,
  type RenewChunkOptions,
  type ReleaseChunkOptions,
} from './quota';
export { LocalConsumer, type LocalConsumerOptions } from './local-consumer';
export type {
  QuotaState,
  ConsumeResult,
  CommitResult,
  TopUpResult,
  Reservation,
  ChunkLease,
  ChunkStatus,
  ChunkConsumeResult,
} from './types';
export {
  InsufficientQuotaError,
  IdempotencyConflictError,
  ReservationExpiredError,
  ReservationAlreadyCommittedError,
  ReservationNotFoundError,
  LeaseOwnershipMismatchError,
  LeaseExpiredError,
  LeaseAlreadyReleasedError,
  LeaseNotFoundError,
  CorruptStateError,
  ConsumerClosedError,
} from './errors';
export { closeRedisResources, configureRedisClient, InvalidArgumentError, XRedisError } from '@x/redis-core';
export { describe, type QuotaDescription } from './describe';
