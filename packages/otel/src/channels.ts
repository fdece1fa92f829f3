/**
 * Every tracing channel the @x packages publish, by package: public operations
 * (`x:<package>:<operation>`, Node tracing channels) and point events (`x:<package>:<event>`,
 * plain channels). `diagnostics_channel` has no wildcard, so the list is kept here; a test
 * compares it with what the packages define.
 */
export const OPERATIONS: Readonly<Record<string, readonly string[]>> = {
  lock: ['acquire', 'tryAcquire', 'release', 'extend'],
  semaphore: ['acquire', 'tryAcquire', 'release', 'extend'],
  event: ['set', 'reset', 'wait', 'countDown'],
  quota: ['tryConsume', 'topUp', 'setAvailable', 'reserve', 'commit', 'cancel', 'allocateChunk', 'consumeChunk', 'renewChunk', 'releaseChunk'],
  idempotency: ['run', 'begin', 'complete', 'fail'],
  streams: ['publish', 'commit'],
  leasedkeyq: ['put', 'get', 'ack', 'release', 'extend'],
};

/** Point events, by package. */
export const EVENTS: Readonly<Record<string, readonly string[]>> = {
  lock: ['lease-lost', 'hand-off'],
  semaphore: ['lease-lost', 'hand-off'],
  idempotency: ['lease-lost'],
  streams: ['dead-lettered', 'standby-took-over', 'lease-lost'],
  leasedkeyq: ['dead-lettered'],
};

/** `x:<package>:<name>` for every entry of a table above. */
export function channelNames(table: Readonly<Record<string, readonly string[]>>): string[] {
  return Object.entries(table).flatMap(([pkg, names]) => names.map((n) => `x:${pkg}:${n}`));
}
