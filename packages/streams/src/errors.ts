import { XRedisError } from '@x/redis-core';

/**
 * A commit (or a read, a retry, a dead-lettering) was refused by the fencing check: in stateful
 * mode another processor took the group's lease over (its epoch moved on); in competing mode the
 * message was claimed by another consumer. Nothing of the refused operation was written.
 *
 * The consumer handles it by itself (it drops what it held and stands by, or skips the
 * message); it reaches you through `onError`.
 *
 * @example
 * new StreamConsumer(client, { ..., onError: (e) => {
 *   if (StreamFencedError.isInstance(e) && e.code === 'STREAM_FENCED') metrics.fenced++;
 * } });
 */
export class StreamFencedError extends XRedisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STREAM_FENCED', message, options);
  }
}

/**
 * `tx.publish` named a stream in another space (another hash tag, so another Cluster slot):
 * a commit can only write to streams of its own space. Thrown inside the handler, so the
 * message is retried and finally dead-lettered with this error.
 *
 * @example
 * tx.publish({ space: 'billing', stream: 'invoices' }, fields); // throws unless the consumer's space is 'billing'
 */
export class StreamCrossSlotError extends XRedisError {
  constructor(message: string) {
    super('STREAM_CROSS_SLOT', message);
  }
}

/**
 * The group is already used in the other mode (stateful vs competing): one Redis consumer group
 * cannot be both. Use another group name.
 *
 * @example
 * await consumer.start(); // rejects with StreamModeConflictError when the group runs in the other mode
 */
export class StreamModeConflictError extends XRedisError {
  constructor(message: string) {
    super('STREAM_MODE_CONFLICT', message);
  }
}

/**
 * The codec could not decode the stored state or encode the handler's state. Decoding failures
 * stop the consumer (fix the codec or the data); encoding failures fail the message like a
 * throwing handler.
 *
 * @example
 * onError: (e) => { if (XRedisError.isInstance(e) && e.code === 'STREAM_CODEC') alert(e); }
 */
export class StreamCodecError extends XRedisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STREAM_CODEC', message, options);
  }
}
