export { AutoResetEvent } from './auto-reset-event';
export { ManualResetEvent } from './manual-reset-event';
export { CountDownLatch, type CountDownLatchOptions } from './count-down-latch';
export type { EventOptions, EventWaitOptions } from './options';
export { EventTimeoutError } from './errors';
export { closeRedisResources, configureRedisClient, InvalidArgumentError, RedisUnavailableError, XRedisError } from '@x/redis-core';
export { describe, type EventDescription } from './describe';
