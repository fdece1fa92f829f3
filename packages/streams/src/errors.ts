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
 * A commit would write keys in more than one Redis Cluster slot, which the server refuses
 * (CROSSSLOT): `tx.publish` named a stream of another space, or (on a Cluster) a key outside the
 * source's slot; or `start()` found the dead-letter stream outside it. `keys` names them. Fix:
 * put the keys in one hash tag (`{orders}` and `{orders}:alerts` share a slot). Thrown inside the
 * handler, so the message is retried and finally dead-lettered with this error; thrown by
 * `start()` before anything is written.
 *
 * @example
 * tx.publish({ key: 'alerts' }, fields); // on a Cluster, from a consumer of { key: 'orders' }: StreamCrossSlotError
 * tx.publish({ key: '{orders}:alerts' }, fields); // same slot as 'orders': fine
 */
export class StreamCrossSlotError extends XRedisError {
  /** The keys that would have shared a commit. */
  readonly keys: readonly string[];
  constructor(message: string, keys: readonly string[] = []) {
    super('STREAM_CROSS_SLOT', message);
    this.keys = keys;
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
