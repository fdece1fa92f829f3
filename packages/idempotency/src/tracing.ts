import { operation, pointEvent, type Outcome } from '@x/redis-core';
import type { Claim } from './store';

const BEGIN_OUTCOME: Record<Claim<unknown>['status'], Outcome> = {
  acquired: 'granted',
  completed: 'replayed',
  failed: 'replayed',
  in_progress: 'refused',
};

// The tracing channels of @x/idempotency (`x:idempotency:<operation>`, resource: the key).
export const traced = {
  run: operation<{ result: unknown; replayed: boolean }>('idempotency', 'run', {
    script: 'idempotency.begin',
    outcome: (r) => (r.replayed ? 'replayed' : 'ok'),
    errors: { IDEMPOTENCY_IN_PROGRESS: 'timed-out', IDEMPOTENCY_FINGERPRINT_MISMATCH: 'refused', IDEMPOTENCY_LEASE_LOST: 'fenced' },
  }),
  begin: operation<Claim<unknown>>('idempotency', 'begin', {
    script: 'idempotency.begin',
    outcome: (claim) => BEGIN_OUTCOME[claim.status],
    fields: (claim) => ({ status: claim.status }),
    errors: { IDEMPOTENCY_FINGERPRINT_MISMATCH: 'refused' },
  }),
  complete: operation<void>('idempotency', 'complete', { script: 'idempotency.complete', errors: { IDEMPOTENCY_LEASE_LOST: 'fenced' } }),
  fail: operation<void>('idempotency', 'fail', { script: 'idempotency.fail', errors: { IDEMPOTENCY_LEASE_LOST: 'fenced' } }),
  leaseLost: pointEvent('idempotency', 'lease-lost'),
};
