export {
  Semaphore,
  type SemaphoreCreateOptions,
  type SemaphoreAttachOptions,
  type SemaphoreAcquireOptions,
  type SemaphoreTryAcquireOptions,
  type Permit,
  type PermitHolder,
} from './semaphore';
export {
  SemaphoreTimeoutError,
  SemaphoreLimitMismatchError,
  SemaphoreNotFoundError,
  PermitNotHeldError,
  SemaphoreClosedError,
} from './errors';
export { closeRedisResources, configureRedisClient, InvalidArgumentError, RedisUnavailableError, XRedisError } from '@x/redis-core';
export { describe, releaseByToken, dropWaiter, type SemaphoreDescription } from './describe';
