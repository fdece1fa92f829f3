import { operation, pointEvent } from '@x/redis-core';

// The tracing channels of @x/streams (`x:streams:<name>`, resource: the stream's name).
export const traced = {
  publish: operation<string>('streams', 'publish', { script: 'streams.publish' }),
  /** A batch's commit: acks, state, publishes, in one script. Fields: group, mode, messages. */
  commit: operation<unknown>('streams', 'commit', { errors: { STREAM_FENCED: 'fenced' } }),
  deadLettered: pointEvent('streams', 'dead-lettered'),
  /** A standby became the group's active instance. */
  standbyTookOver: pointEvent('streams', 'standby-took-over'),
  leaseLost: pointEvent('streams', 'lease-lost'),
};
