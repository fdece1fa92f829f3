import { operation, pointEvent } from '@x/redis-core';

// The tracing channels of @x/leasedkeyq (`x:leasedkeyq:<name>`, resource: the queue's name; the
// item's key is the `key` field). The worker's calls are traced too.
export const traced = {
  put: operation<string>('leasedkeyq', 'put', {
    script: 'leasedkeyq.put',
    fields: (result) => ({ status: result }),
    errors: { KEY_ALREADY_IN_FLIGHT: 'refused' },
  }),
  get: operation<{ item: { key: string; lease: { fence: number; deliveries: number } } }>('leasedkeyq', 'get', {
    script: 'leasedkeyq.get',
    waits: true,
    fields: (r) => ({ key: r.item.key, fence: r.item.lease.fence, deliveries: r.item.lease.deliveries }),
    errors: { QUEUE_TIMEOUT: 'timed-out' },
  }),
  ack: operation<void>('leasedkeyq', 'ack', { script: 'leasedkeyq.ack', errors: { INVALID_LEASE: 'fenced' } }),
  release: operation<string>('leasedkeyq', 'release', {
    script: 'leasedkeyq.release',
    fields: (result) => ({ status: result }),
    errors: { INVALID_LEASE: 'fenced' },
  }),
  extend: operation<number>('leasedkeyq', 'extend', { script: 'leasedkeyq.extend', errors: { INVALID_LEASE: 'fenced' } }),
  deadLettered: pointEvent('leasedkeyq', 'dead-lettered'),
};
