export {
  IdempotencyStore,
  type IdempotencyStoreOptions,
  type Claim,
  type Acquired,
  type Completed,
  type Failed,
  type InProgress,
  type BeginOptions,
  type RunOptions,
  type RunContext,
  type FailOptions,
  type SetOptions,
  type CacheErrors,
  type Inspection,
} from './store';
export {
  idempotencyMiddleware,
  type IdempotencyMiddleware,
  type IdempotencyMiddlewareOptions,
  type IdempotentRequest,
} from './middleware';
export type { IdempotencyContext, IdempotencyHttpOptions } from './engine';
export { IdempotencyFingerprintMismatchError, IdempotencyInProgressError, IdempotencyLeaseLostError } from './errors';
export { ReplayedError } from './replayed-error';
export { jsonCodec, type Codec } from './codec';
export { fingerprintOf, canonicalJson } from './fingerprint';
export { closeRedisResources, configureRedisClient, InvalidArgumentError, XRedisError } from '@x/redis-core';
export { describe, type IdempotencyDescription } from './describe';
