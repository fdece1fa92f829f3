import { operation } from '@x/redis-core';

interface Applied {
  applied: boolean;
  remaining: number;
}

const refusals = { INSUFFICIENT_QUOTA: 'refused', LEASE_EXPIRED: 'refused', RESERVATION_EXPIRED: 'refused' } as const;

// The tracing channels of @x/quota (`x:quota:<operation>`), named after the public methods.
export const traced = {
  tryConsume: operation<Applied>('quota', 'tryConsume', {
    script: 'quota.tryConsume',
    outcome: (r) => (r.applied ? 'ok' : 'refused'),
    fields: (r) => ({ remaining: r.remaining }),
  }),
  topUp: operation<unknown>('quota', 'topUp', { script: 'quota.topUp' }),
  setAvailable: operation<unknown>('quota', 'setAvailable', { script: 'quota.setAvailable' }),
  reserve: operation<unknown>('quota', 'reserve', { script: 'quota.reserve', errors: refusals }),
  commit: operation<{ remaining: number }>('quota', 'commit', { script: 'quota.commit', errors: refusals, fields: (r) => ({ remaining: r.remaining }) }),
  cancel: operation<unknown>('quota', 'cancel', { script: 'quota.cancel' }),
  allocateChunk: operation<unknown>('quota', 'allocateChunk', { script: 'quota.allocateChunk', errors: refusals }),
  consumeChunk: operation<Applied>('quota', 'consumeChunk', {
    script: 'quota.consumeChunk',
    errors: refusals,
    outcome: (r) => (r.applied ? 'ok' : 'refused'),
    fields: (r) => ({ remaining: r.remaining }),
  }),
  renewChunk: operation<unknown>('quota', 'renewChunk', { script: 'quota.renewChunk', errors: refusals }),
  releaseChunk: operation<unknown>('quota', 'releaseChunk', { script: 'quota.releaseChunk' }),
};
