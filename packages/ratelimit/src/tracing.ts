import { operation } from '@x/redis-core';
import type { RateLimitDecision } from './types';

const decided = {
  outcome: (d: RateLimitDecision) => (d.allowed ? ('granted' as const) : ('refused' as const)),
  fields: (d: RateLimitDecision) => ({ remaining: d.remaining, retryAfterMs: d.retryAfterMs }),
};

// The tracing channels of @x/ratelimit (`x:ratelimit:<operation>`), named after the public methods.
export const traced = {
  limit: operation<RateLimitDecision>('ratelimit', 'limit', { script: 'ratelimit.limit', ...decided }),
  peek: operation<RateLimitDecision>('ratelimit', 'peek', { script: 'ratelimit.peek', fields: decided.fields }),
  refund: operation<RateLimitDecision>('ratelimit', 'refund', { script: 'ratelimit.refund', fields: decided.fields }),
  reset: operation<unknown>('ratelimit', 'reset', { script: 'ratelimit.reset' }),
  waitFor: operation<RateLimitDecision>('ratelimit', 'waitFor', {
    script: 'ratelimit.limit',
    outcome: () => 'granted',
    fields: decided.fields,
    errors: { RATE_LIMIT_TIMEOUT: 'timed-out' },
    waits: true,
  }),
};
