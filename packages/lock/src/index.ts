export { Lock, type LockOptions, type AcquireOptions, type LockHandle, type LockState } from './lock';
export { LockNotHeldError, LockTimeoutError } from './errors';
export { closeRedisResources, configureRedisClient, InvalidArgumentError, RedisUnavailableError, XRedisError } from '@x/redis-core';
export { describe, releaseByToken, dropWaiter, type LockDescription } from './describe';
