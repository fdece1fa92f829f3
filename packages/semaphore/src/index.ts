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
export { InvalidArgumentError, XRedisError, closeRedisResources, configureRedisClient } from '@x/redis-core';
