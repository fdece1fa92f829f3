export { Lock, type LockOptions, type AcquireOptions, type LockHandle, type LockState } from './lock';
export { LockNotHeldError, LockTimeoutError } from './errors';
export { InvalidArgumentError, XRedisError, closeRedisResources, configureRedisClient } from '@x/redis-core';
