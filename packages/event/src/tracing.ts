import { operation } from '@x/redis-core';

// The tracing channels of @x/event (`x:event:<operation>`). Each call passes `kind` (auto-reset,
// manual-reset, latch) and its script's name as context fields: constants, so tracing allocates
// nothing when nobody subscribes.
export const traced = {
  set: operation<unknown>('event', 'set'),
  reset: operation<unknown>('event', 'reset'),
  wait: operation<unknown>('event', 'wait', { waits: true, errors: { EVENT_TIMEOUT: 'timed-out' } }),
  countDown: operation<number>('event', 'countDown', { fields: (count) => ({ count }) }),
};
