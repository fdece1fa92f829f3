export { RateLimiter, type RateLimiterOptions, type LimitOptions, type WaitForOptions } from './limiter';
export type { RateLimit, RateLimitAlgorithm, RateLimitDecision, RateLimitPolicyState } from './types';
export { RateLimitTimeoutError, CorruptStateError } from './errors';
export { InvalidArgumentError, XRedisError } from '@x/redis-core';
export { rateLimitMiddleware, type RateLimitMiddleware, type RateLimitMiddlewareOptions, type RateLimitedRequest } from './middleware';
